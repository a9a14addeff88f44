package features

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// FrontendConfig configures the whole FunASR front-end.
type FrontendConfig struct {
	// Fbank configures the filter banks (DefaultFbankOptions for FunASR).
	Fbank FbankOptions
	// LFRM and LFRN are the LFR window and shift in frames (7 and 6; the
	// lfr_window_size and lfr_window_shift of sherpa-onnx metadata).
	LFRM, LFRN int
	// CMVN normalises each LFR row; nil means none. Its Dim must be
	// LFRM·Fbank.NumMel. It is shared, not copied.
	CMVN *CMVN
}

// Frontend turns audio into model input rows, streaming: fbank → LFR →
// CMVN. It equals ComputeFbank, ApplyLFR and CMVN.Apply run on the whole
// audio, for any chunking. It is not safe for concurrent use; use one per
// stream (they may share a CMVN).
type Frontend struct {
	fb    *Fbank
	lfr   *LFR
	cmvn  *CMVN
	emit  func(row []float32) // the caller's callback during Accept/Flush
	frame func(frame []float32)
	row   func(row []float32)
}

// NewFrontend validates c and builds the stages. It does no I/O. Errors
// wrap ErrInvalidOptions.
func NewFrontend(c FrontendConfig) (*Frontend, error) {
	fb, err := NewFbank(c.Fbank)
	if err != nil {
		return nil, fmt.Errorf("frontend: %w", err)
	}
	lfr, err := NewLFR(c.LFRM, c.LFRN, fb.Dim())
	if err != nil {
		return nil, fmt.Errorf("frontend: %w", err)
	}
	if c.CMVN != nil && (c.CMVN.Dim() != lfr.Dim() || len(c.CMVN.InvStddev) != lfr.Dim()) {
		return nil, fmt.Errorf("frontend: %w: CMVN has %d dimensions but LFR rows have %d (%d×%d): the am.mvn does not belong to these front-end settings",
			ErrInvalidOptions, c.CMVN.Dim(), lfr.Dim(), c.LFRM, fb.Dim())
	}
	f := &Frontend{fb: fb, lfr: lfr, cmvn: c.CMVN}
	// Method values are made once here so that Accept does not allocate.
	f.frame = f.onFrame
	f.row = f.onRow
	return f, nil
}

func (f *Frontend) onFrame(frame []float32) { f.lfr.Accept(frame, f.row) }

func (f *Frontend) onRow(row []float32) {
	if f.cmvn != nil {
		f.cmvn.Apply(row)
	}
	f.emit(row)
}

// Dim is the width of an output row, LFRM·NumMel (560 for FunASR).
func (f *Frontend) Dim() int { return f.lfr.Dim() }

// Accept feeds samples (see Fbank.Accept for their scale) and calls emit,
// synchronously and in order, with every row they complete. The row slice
// is owned by f and overwritten by the next row: copy it to keep it; emit
// must not be nil nor call back into f. samples is not retained. Accept
// does not allocate.
func (f *Frontend) Accept(samples []float32, emit func(row []float32)) {
	f.emit = emit
	f.fb.Accept(samples, f.frame)
	f.emit = nil
}

// Flush ends the utterance: it emits the last rows (those padded with the
// last frame) and resets f. Samples short of a whole window are dropped,
// as Kaldi's snip_edges does.
func (f *Frontend) Flush(emit func(row []float32)) {
	f.emit = emit
	f.lfr.Flush(f.row)
	f.emit = nil
	f.fb.Reset()
}

// Reset drops all buffered audio and frames so that the next Accept starts
// a new utterance.
func (f *Frontend) Reset() {
	f.fb.Reset()
	f.lfr.Reset()
}

// WriteMatrix writes data as little-endian float32 values, with no header
// (the layout of the reference .bin files). It returns w's error.
func WriteMatrix(w io.Writer, data []float32) error {
	var buf [4096]byte
	for len(data) > 0 {
		n := min(len(data), len(buf)/4)
		for i, v := range data[:n] {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		if _, err := w.Write(buf[:4*n]); err != nil {
			return fmt.Errorf("write matrix: %w", err)
		}
		data = data[n:]
	}
	return nil
}

// ReadMatrix reads little-endian float32 values until EOF and returns them
// (newly allocated). The shape is not stored; the caller knows the row
// width. Errors wrap ErrBadMatrix when the length is not a multiple of 4,
// or are r's.
func ReadMatrix(r io.Reader) ([]float32, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read matrix: %w", err)
	}
	if len(data)%4 != 0 {
		return nil, fmt.Errorf("read matrix: %w: %d bytes is not a whole number of float32 values", ErrBadMatrix, len(data))
	}
	out := make([]float32, len(data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return out, nil
}
