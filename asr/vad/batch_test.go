package vad

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/inference"
)

// feed streams x into d in 20 ms frames and returns the events.
func feed(t testing.TB, d *Detector, x []float32, rate int) []Event {
	var ev []Event
	var err error
	for rest := x; len(rest) > 0; {
		n := min(len(rest), rate/50)
		if ev, err = d.Accept(context.Background(), rest[:n], ev); err != nil {
			t.Error(err)
			return nil
		}
		rest = rest[n:]
	}
	return d.Flush(ev)
}

// Detectors sharing a Batcher, fed concurrently like phone calls, find
// the same segments as each running alone; the model really ran batches.
func TestBatcherSameAsAlone(t *testing.T) {
	m := loadSilero(t)
	names := []string{"real_wenetspeech_test_meeting_S00000.wav", "tts_sherpa_matcha_baker_0.wav", "real_ppasr_test.wav", "espeak_cmn_02.wav"}
	var clips [][]float32
	rate := 0
	for _, n := range names {
		x, r := readWAV(t, speechFiles(t, n)[0])
		clips, rate = append(clips, x), r
	}
	cfg := DefaultConfig()
	want := make([][]Event, len(clips))
	for i, x := range clips {
		d, err := New(m, cfg, rate)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = feed(t, d, x, rate)
	}
	counter := &countingRunner{r: m}
	b := NewBatcher(counter, 16, time.Millisecond, nil)
	const copies = 3
	got := make([][]Event, len(clips)*copies)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			d, err := New(b, cfg, rate)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = feed(t, d, clips[i%len(clips)], rate)
		})
	}
	wg.Wait()
	for i, ev := range got {
		if !slices.Equal(ev, want[i%len(clips)]) {
			t.Errorf("%s (copy %d): batched %v, alone %v", names[i%len(clips)], i/len(clips), ev, want[i%len(clips)])
		}
	}
	if b.single.Load() || counter.maxN.Load() < 2 {
		t.Errorf("no batch ran (largest %d, single %v)", counter.maxN.Load(), b.single.Load())
	}
	t.Logf("%d model runs for %d windows, largest batch %d", counter.runs.Load(), counter.windows.Load(), counter.maxN.Load())
}

// A model that refuses batches is run window by window, with the same
// results.
func TestBatcherFallsBack(t *testing.T) {
	m := loadSilero(t)
	x, rate := readWAV(t, speechFiles(t, "espeak_cmn_02.wav")[0])
	d, err := New(m, DefaultConfig(), rate)
	if err != nil {
		t.Fatal(err)
	}
	want := feed(t, d, x, rate)
	b := NewBatcher(refuseBatches{m}, 8, 5*time.Millisecond, nil)
	var wg sync.WaitGroup
	got := make([][]Event, 4)
	for i := range got {
		wg.Go(func() {
			d, err := New(b, DefaultConfig(), rate)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = feed(t, d, x, rate)
		})
	}
	wg.Wait()
	for i, ev := range got {
		if !slices.Equal(ev, want) {
			t.Errorf("detector %d: %v, want %v", i, ev, want)
		}
	}
	if !b.single.Load() {
		t.Error("the batcher did not fall back to single runs")
	}
}

type countingRunner struct {
	r                   Runner
	runs, windows, maxN atomic.Int64
}

func (c *countingRunner) Run(ctx context.Context, in []inference.Tensor) ([]inference.Tensor, error) {
	n := in[0].Shape[0]
	c.runs.Add(1)
	c.windows.Add(n)
	for {
		m := c.maxN.Load()
		if n <= m || c.maxN.CompareAndSwap(m, n) {
			break
		}
	}
	return c.r.Run(ctx, in)
}

type refuseBatches struct{ r Runner }

func (f refuseBatches) Run(ctx context.Context, in []inference.Tensor) ([]inference.Tensor, error) {
	if in[0].Shape[0] != 1 {
		return nil, errors.New(fmt.Sprint("fixed batch 1, got ", in[0].Shape[0]))
	}
	return f.r.Run(ctx, in)
}
