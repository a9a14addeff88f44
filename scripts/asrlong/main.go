// Command asrlong writes a long 16 kHz mono 16-bit WAV for the speech
// benchmarks: the Mandarin clips of ../shared/data/speech in turn, each
// followed by a second of quiet room noise, until the requested length.
// It streams the output, so an hour of audio needs no hour in memory.
//
//	go run ./scripts/asrlong -minutes 60 -out /tmp/hour.wav
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/zhiyin/zhiyin/asr/audio"
)

func main() {
	minutes := flag.Float64("minutes", 60, "length of the output")
	out := flag.String("out", "", "output WAV file")
	speech := flag.String("speech", "../shared/data/speech", "folder of 16 kHz WAV clips")
	flag.Parse()
	if *out == "" || *minutes <= 0 {
		fmt.Fprintln(os.Stderr, "usage: asrlong -minutes N -out FILE.wav")
		os.Exit(2)
	}
	if err := run(*minutes, *out, *speech); err != nil {
		fmt.Fprintln(os.Stderr, "asrlong:", err)
		os.Exit(1)
	}
}

func run(minutes float64, out, dir string) error {
	names, err := filepath.Glob(filepath.Join(dir, "*.wav"))
	if err != nil {
		return err
	}
	sort.Strings(names)
	var clips [][]float32
	for _, n := range names {
		if strings.Contains(filepath.Base(n), "noise") {
			continue
		}
		f, err := os.Open(n)
		if err != nil {
			return err
		}
		r, err := audio.NewWAVReader(f)
		if err == nil && r.Format().SampleRate == 16000 {
			var s []float32
			if s, err = audio.ReadAll(r); err == nil {
				clips = append(clips, s)
			}
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
	}
	if len(clips) == 0 {
		return fmt.Errorf("no 16 kHz clips in %s", dir)
	}
	total := int64(minutes * 60 * 16000)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	hdr := make([]byte, 44)
	copy(hdr, "RIFF")
	binary.LittleEndian.PutUint32(hdr[4:], uint32(36+2*total))
	copy(hdr[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(hdr[16:], 16)
	binary.LittleEndian.PutUint16(hdr[20:], 1)
	binary.LittleEndian.PutUint16(hdr[22:], 1)
	binary.LittleEndian.PutUint32(hdr[24:], 16000)
	binary.LittleEndian.PutUint32(hdr[28:], 32000)
	binary.LittleEndian.PutUint16(hdr[32:], 2)
	binary.LittleEndian.PutUint16(hdr[34:], 16)
	copy(hdr[36:], "data")
	binary.LittleEndian.PutUint32(hdr[40:], uint32(2*total))
	w.Write(hdr)
	rng := rand.New(rand.NewPCG(1, 2))
	var n int64
	put := func(v float32) {
		s := int16(max(-32768, min(32767, v*32768)))
		var b [2]byte
		binary.LittleEndian.PutUint16(b[:], uint16(s))
		w.Write(b[:])
		n++
	}
	for i := 0; n < total; i++ {
		for _, v := range clips[i%len(clips)] {
			if n == total {
				break
			}
			put(v)
		}
		for k := 0; k < 16000 && n < total; k++ {
			put(float32(rng.NormFloat64() * 0.002))
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}
