package features

import "fmt"

// maxLFRWidth bounds m·dim so that a configuration cannot ask for huge rows.
const maxLFRWidth = 1 << 20

// LFR stacks fbank frames into low frame rate rows, streaming, with
// FunASR's padding rule: the input is preceded by (m−1)/2 copies of its
// first frame; row i is the concatenation of padded frames n·i … n·i+m−1;
// frames past the end repeat the last frame; an input of T frames gives
// ceil(T/n) rows of m·dim values.
//
// Accept emits each row as soon as its last frame has arrived; Flush emits
// the rows that reach past the end and need the last frame repeated. The
// result equals ApplyLFR on the whole input. An LFR keeps at most m frames.
// It is not safe for concurrent use.
type LFR struct {
	m, n, dim, pad int

	ring  []float32 // m frames; padded frame k lives in slot k mod m
	last  []float32 // the newest real frame
	next  int       // next row to emit
	count int       // padded frames seen
	real  int       // real frames seen
	row   []float32 // m·dim, handed to emit
}

// NewLFR returns an LFR stacking m frames every n of dimension dim
// (FunASR: 7, 6, 80). Errors wrap ErrInvalidOptions.
func NewLFR(m, n, dim int) (*LFR, error) {
	if m < 1 || n < 1 || dim < 1 || m > maxLFRWidth || dim > maxLFRWidth || m*dim > maxLFRWidth {
		return nil, fmt.Errorf("lfr options: %w: m=%d n=%d dim=%d: need m, n, dim ≥ 1 and m·dim ≤ %d (FunASR uses m=7, n=6, dim=80)", ErrInvalidOptions, m, n, dim, maxLFRWidth)
	}
	return &LFR{
		m: m, n: n, dim: dim, pad: (m - 1) / 2,
		ring: make([]float32, m*dim),
		last: make([]float32, dim),
		row:  make([]float32, m*dim),
	}, nil
}

// Dim is the width of an output row, m·dim.
func (l *LFR) Dim() int { return l.m * l.dim }

// Reset forgets all frames so that the next Accept starts a new utterance.
func (l *LFR) Reset() {
	l.next, l.count, l.real = 0, 0, 0
}

// Accept adds one frame (len(frame) must be dim; it panics otherwise) and
// calls emit, synchronously, with every row completed by it. The row slice
// is owned by l and overwritten by the next row: copy it to keep it (it may
// be modified in place, as Frontend does with CMVN). frame is copied, not
// retained. Accept does not allocate.
func (l *LFR) Accept(frame []float32, emit func(row []float32)) {
	if len(frame) != l.dim {
		panic(fmt.Sprintf("features: LFR.Accept: frame has %d values, want %d", len(frame), l.dim))
	}
	copy(l.last, frame)
	l.real++
	if l.count == 0 {
		for range l.pad {
			l.push(frame, emit)
		}
	}
	l.push(frame, emit)
}

// push adds padded frame number l.count and emits the rows it completes.
func (l *LFR) push(frame []float32, emit func(row []float32)) {
	k := l.count
	l.count++
	if k >= l.next*l.n { // frames between rows are skipped when n > m
		s := (k % l.m) * l.dim
		copy(l.ring[s:s+l.dim], frame)
	}
	for l.next*l.n+l.m <= l.count {
		l.fill(l.next)
		l.next++
		emit(l.row)
	}
}

// fill builds row i into l.row, repeating the last frame past the end.
func (l *LFR) fill(i int) {
	for j := range l.m {
		k := i*l.n + j
		dst := l.row[j*l.dim : (j+1)*l.dim]
		if k < l.count {
			s := (k % l.m) * l.dim
			copy(dst, l.ring[s:s+l.dim])
		} else {
			copy(dst, l.last)
		}
	}
}

// Flush emits the remaining rows, those that reach past the last frame,
// then resets l. With no frames accepted it emits nothing.
func (l *LFR) Flush(emit func(row []float32)) {
	rows := (l.real + l.n - 1) / l.n
	for ; l.next < rows; l.next++ {
		l.fill(l.next)
		emit(l.row)
	}
	l.Reset()
}

// ApplyLFR stacks frames×dim features (flat, row-major) into rows of m·dim
// values as FunASR's apply_lfr does, and returns them (newly allocated) with
// their count, ceil(frames/n). It panics if len(feats) < frames·dim or an
// argument is below 1.
func ApplyLFR(feats []float32, frames, dim, m, n int) ([]float32, int) {
	if frames < 0 || dim < 1 || m < 1 || n < 1 || len(feats) < frames*dim {
		panic(fmt.Sprintf("features: ApplyLFR: bad arguments: %d values, frames=%d dim=%d m=%d n=%d", len(feats), frames, dim, m, n))
	}
	if frames == 0 {
		return nil, 0
	}
	pad := (m - 1) / 2
	rows := (frames + n - 1) / n
	out := make([]float32, rows*m*dim)
	// frameAt returns padded frame k: copies of frame 0 first, the last
	// frame repeated past the end.
	frameAt := func(k int) []float32 {
		k = min(max(k-pad, 0), frames-1)
		return feats[k*dim : (k+1)*dim]
	}
	for i := range rows {
		r := out[i*m*dim : (i+1)*m*dim]
		for j := range m {
			copy(r[j*dim:(j+1)*dim], frameAt(i*n+j))
		}
	}
	return out, rows
}
