package voice

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/zhiyin/zhiyin/asr/audio"
	"github.com/zhiyin/zhiyin/channels"
)

// A recording file is a header and sealed chunks, written as the call goes
// so memory does not grow with the call:
//
//	header: "ZYVREC1\n" | u16 len | call id | u32 rate (8000) | u16 channels (2)
//	chunk:  u32 plain length | u8 final | u16 len | key id | u32 len | sealed blob
//
// The plain text of a chunk is 16-bit little-endian PCM, caller left, bot
// right. Each chunk's AAD binds the call id, its index, its length and
// whether it is the last, so chunks cannot be moved between recordings,
// reordered or cut short unnoticed. Integers are big-endian.
const (
	recMagic     = "ZYVREC1\n"
	recRate      = 8000
	recChannels  = 2
	chunkFrames  = recRate // one second per chunk
	maxChunk     = 1 << 20 // plain bytes a reader accepts per chunk
	maxCallID    = 1024
	maxKeyID     = 256
	maxBotQueue  = 10 * recRate // bot samples held for mixing
	recFileMode  = 0o600
	recExtension = ".zrec"
)

func chunkAAD(callID string, idx uint64, n uint32, final bool) []byte {
	b := make([]byte, 0, len(callID)+40)
	b = append(b, "voice-recording/"...)
	b = append(b, callID...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint64(b, idx)
	b = binary.BigEndian.AppendUint32(b, n)
	if final {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return b
}

// recorder writes one call's recording. caller runs on the loop
// goroutine, bot and discardBot on others; close once at the end.
type recorder struct {
	path   string
	f      *os.File
	w      *bufio.Writer
	sealer channels.Sealer
	callID string
	idx    uint64
	inRes  *audio.Resampler
	tmp    []float32
	pcm    []byte
	err    error

	mu     sync.Mutex
	outRes *audio.Resampler
	btmp   []float32
	botq   []float32
}

func newRecorder(dir string, sealer channels.Sealer, callID string, now time.Time, inRate, outRate int) (*recorder, error) {
	if len(callID) > maxCallID {
		return nil, fmt.Errorf("voice: call id longer than %d bytes", maxCallID)
	}
	inRes, err := audio.NewResampler(inRate, recRate)
	if err != nil {
		return nil, fmt.Errorf("voice: recording: %w", err)
	}
	outRes, err := audio.NewResampler(outRate, recRate)
	if err != nil {
		return nil, fmt.Errorf("voice: recording: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("voice: recordings folder: %w (check voice recordings folder permissions)", err)
	}
	sum := sha256.Sum256([]byte(callID))
	name := now.UTC().Format("20060102T150405") + "-" + hex.EncodeToString(sum[:6]) + recExtension
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, recFileMode)
	if err != nil {
		return nil, fmt.Errorf("voice: recording: %w", err)
	}
	r := &recorder{path: path, f: f, w: bufio.NewWriterSize(f, 4096), sealer: sealer, callID: callID,
		inRes: inRes, outRes: outRes, pcm: make([]byte, 0, chunkFrames*4)}
	hdr := []byte(recMagic)
	hdr = binary.BigEndian.AppendUint16(hdr, uint16(len(callID)))
	hdr = append(hdr, callID...)
	hdr = binary.BigEndian.AppendUint32(hdr, recRate)
	hdr = binary.BigEndian.AppendUint16(hdr, recChannels)
	if _, err := r.w.Write(hdr); err != nil {
		f.Close()
		return nil, fmt.Errorf("voice: recording: %w", err)
	}
	return r, nil
}

func pcm16(v float32) uint16 {
	x := math.Round(float64(v) * 32768)
	return uint16(int16(max(-32768, min(32767, x))))
}

// caller adds the caller's samples (input rate) and as many of the bot's
// queued samples beside them.
func (r *recorder) caller(s []float32) {
	if r.err != nil {
		return
	}
	r.tmp = r.inRes.Process(r.tmp[:0], s)
	r.mu.Lock()
	n := min(len(r.tmp), len(r.botq))
	for i, v := range r.tmp {
		var b float32
		if i < n {
			b = r.botq[i]
		}
		r.pcm = binary.LittleEndian.AppendUint16(r.pcm, pcm16(v))
		r.pcm = binary.LittleEndian.AppendUint16(r.pcm, pcm16(b))
		if len(r.pcm) >= chunkFrames*4 {
			r.flush(false)
		}
	}
	r.botq = r.botq[:copy(r.botq, r.botq[n:])]
	r.mu.Unlock()
}

// bot queues what the bot plays (output rate); the queue goes out beside
// the caller's audio as it arrives, like the line sends it.
func (r *recorder) bot(s []float32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.btmp = r.outRes.Process(r.btmp[:0], s)
	room := maxBotQueue - len(r.botq)
	r.botq = append(r.botq, r.btmp[:min(room, len(r.btmp))]...)
}

// discardBot drops the bot's queued samples (barge-in: the line dropped them).
func (r *recorder) discardBot() {
	r.mu.Lock()
	r.botq = r.botq[:0]
	r.mu.Unlock()
}

// flush seals and writes the chunk buffered so far (r.mu held or unshared).
func (r *recorder) flush(final bool) {
	if r.err != nil {
		return
	}
	n := uint32(len(r.pcm))
	keyID, blob, err := r.sealer.Seal(r.pcm, chunkAAD(r.callID, r.idx, n, final))
	if err != nil {
		r.err = fmt.Errorf("seal recording: %w", err)
		return
	}
	var hdr []byte
	hdr = binary.BigEndian.AppendUint32(hdr, n)
	if final {
		hdr = append(hdr, 1)
	} else {
		hdr = append(hdr, 0)
	}
	hdr = binary.BigEndian.AppendUint16(hdr, uint16(len(keyID)))
	hdr = append(hdr, keyID...)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(blob)))
	if _, err := r.w.Write(hdr); err == nil {
		_, err = r.w.Write(blob)
		r.err = err
	} else {
		r.err = err
	}
	r.idx++
	r.pcm = r.pcm[:0]
}

// close writes the last chunk and closes the file; it returns the path.
func (r *recorder) close() (string, error) {
	r.mu.Lock()
	r.flush(true)
	r.mu.Unlock()
	err := r.err
	if e := r.w.Flush(); err == nil {
		err = e
	}
	if e := r.f.Sync(); err == nil {
		err = e
	}
	if e := r.f.Close(); err == nil {
		err = e
	}
	return r.path, err
}

// OpenRecording decrypts the recording at path into w as a 16-bit stereo
// WAV at 8 kHz (caller left, bot right). A recording whose call did not end
// cleanly is written up to its last whole chunk and the error then says it
// is truncated; any other damage, or a key the sealer lacks, fails
// (ErrRecording). It reads the file twice and holds one chunk in memory.
func OpenRecording(path string, sealer channels.Sealer, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open recording: %w", err)
	}
	defer f.Close()
	callID, total, final, err := scanRecording(bufio.NewReader(f), nil, nil)
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("open recording: %w", err)
	}
	if err := writeWAVHeader(w, total); err != nil {
		return fmt.Errorf("open recording: %w", err)
	}
	if _, _, _, err := scanRecording(bufio.NewReader(f), sealer, w); err != nil {
		return err
	}
	if !final {
		return fmt.Errorf("%w: recording of call %q is truncated (the call did not end cleanly); the audio up to the cut was written", ErrRecording, callID)
	}
	return nil
}

// scanRecording walks a recording: with a sealer it opens each chunk and
// writes it to w; without, it only sums the plain lengths. It returns the
// call id, the plain total and whether the final chunk was seen.
func scanRecording(r io.Reader, sealer channels.Sealer, w io.Writer) (callID string, total int64, final bool, err error) {
	bad := func(what string) error { return fmt.Errorf("%w: %s", ErrRecording, what) }
	magic := make([]byte, len(recMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != recMagic {
		return "", 0, false, bad("not a zhiyin call recording")
	}
	var n16 uint16
	if err := binary.Read(r, binary.BigEndian, &n16); err != nil || n16 > maxCallID {
		return "", 0, false, bad("bad header")
	}
	id := make([]byte, n16)
	if _, err := io.ReadFull(r, id); err != nil {
		return "", 0, false, bad("bad header")
	}
	callID = string(id)
	var rate uint32
	var chans uint16
	if binary.Read(r, binary.BigEndian, &rate) != nil || binary.Read(r, binary.BigEndian, &chans) != nil || rate != recRate || chans != recChannels {
		return callID, 0, false, bad("bad header")
	}
	var skip []byte
	for idx := uint64(0); ; idx++ {
		// A short read anywhere in a chunk is a recording cut by a crash:
		// readable up to the last whole chunk.
		var head [7]byte
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return callID, total, false, nil
		}
		plen := binary.BigEndian.Uint32(head[0:4])
		flag := head[4]
		klen := binary.BigEndian.Uint16(head[5:7])
		if flag > 1 || klen > maxKeyID || plen > maxChunk || plen%4 != 0 {
			return callID, total, false, bad("bad chunk header")
		}
		key := make([]byte, int(klen)+4)
		if _, err := io.ReadFull(r, key); err != nil {
			return callID, total, false, nil
		}
		blen := binary.BigEndian.Uint32(key[klen:])
		key = key[:klen]
		if blen > maxChunk+4096 {
			return callID, total, false, bad("bad chunk header")
		}
		if cap(skip) < int(blen) {
			skip = make([]byte, blen)
		}
		blob := skip[:blen]
		if _, err := io.ReadFull(r, blob); err != nil {
			return callID, total, false, nil
		}
		isFinal := flag == 1
		if sealer != nil {
			plain, err := sealer.Open(string(key), blob, chunkAAD(callID, idx, plen, isFinal))
			if err != nil {
				return callID, total, false, fmt.Errorf("%w: chunk %d does not open (wrong keyring, or the file was altered): %v", ErrRecording, idx, err)
			}
			if len(plain) != int(plen) {
				return callID, total, false, bad("chunk length mismatch")
			}
			if _, err := w.Write(plain); err != nil {
				return callID, total, false, fmt.Errorf("write recording: %w", err)
			}
		}
		total += int64(plen)
		if isFinal {
			return callID, total, true, nil
		}
	}
}

// writeWAVHeader writes a 44-byte 16-bit stereo 8 kHz WAV header.
func writeWAVHeader(w io.Writer, dataLen int64) error {
	if dataLen > math.MaxUint32-36 {
		dataLen = math.MaxUint32 - 36
	}
	h := make([]byte, 0, 44)
	h = append(h, "RIFF"...)
	h = binary.LittleEndian.AppendUint32(h, uint32(36+dataLen))
	h = append(h, "WAVEfmt "...)
	h = binary.LittleEndian.AppendUint32(h, 16)
	h = binary.LittleEndian.AppendUint16(h, 1) // PCM
	h = binary.LittleEndian.AppendUint16(h, recChannels)
	h = binary.LittleEndian.AppendUint32(h, recRate)
	h = binary.LittleEndian.AppendUint32(h, recRate*recChannels*2)
	h = binary.LittleEndian.AppendUint16(h, recChannels*2)
	h = binary.LittleEndian.AppendUint16(h, 16)
	h = append(h, "data"...)
	h = binary.LittleEndian.AppendUint32(h, uint32(dataLen))
	_, err := w.Write(h)
	return err
}
