package audio_test

import (
	"bytes"
	"fmt"

	"github.com/zhiyin/zhiyin/asr/audio"
)

// Decode an upload of any supported type and bring it to the recognizer's
// 16 kHz, streaming so that memory stays bounded.
func Example() {
	upload := audio.EncodeWAV(make([]float32, 8000), 8000) // 1 s of silence at 8 kHz

	r, err := audio.NewReader(bytes.NewReader(upload), "audio/wav", 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	rs, err := audio.NewResampler(r.Format().SampleRate, 16000)
	if err != nil {
		fmt.Println(err)
		return
	}
	buf := make([]float32, 1600)
	var out []float32
	for {
		n, err := r.Read(buf)
		out = rs.Process(out, buf[:n])
		if err != nil { // io.EOF at the end
			break
		}
	}
	out = rs.Flush(out)
	fmt.Println(r.Format(), "→", len(out), "samples at 16 kHz")
	// Output: pcm 16-bit 8000 Hz 1 ch → 16000 samples at 16 kHz
}

// Telephony: A-law RTP payloads in and out.
func ExampleEncodeALaw() {
	payload := []byte{0xD5, 0x55, 0xAA}
	pcm := make([]float32, len(payload))
	audio.DecodeALaw(pcm, payload)
	back := make([]byte, len(pcm))
	audio.EncodeALaw(back, pcm)
	fmt.Printf("% X\n", back)
	// Output: D5 55 AA
}
