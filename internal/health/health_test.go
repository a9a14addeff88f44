package health

import (
	"errors"
	"sync"
	"testing"
	"time"
)

func TestReadiness(t *testing.T) {
	r := NewReadiness()
	if ready, items := r.Snapshot(); !ready || len(items) != 0 {
		t.Fatalf("empty tracker: %v %v", ready, items)
	}
	changed := r.Changed()
	r.Set("model:b", false, "loading")
	select {
	case <-changed:
	case <-time.After(time.Second):
		t.Fatal("Changed not closed by Set")
	}
	r.Set("database", true, "/x.db")
	ready, items := r.Snapshot()
	if ready || len(items) != 2 || items[0].Name != "database" || items[1].Detail != "loading" {
		t.Fatalf("snapshot: %v %+v", ready, items)
	}
	r.Set("model:b", true, "warmed")
	if ready, _ := r.Snapshot(); !ready {
		t.Error("not ready after every component is")
	}
	r.Set("model:c", false, "loading")
	r.Remove("model:c")
	if ready, items := r.Snapshot(); !ready || len(items) != 2 {
		t.Errorf("after Remove: %v %+v", ready, items)
	}
}

func TestReadinessConcurrent(t *testing.T) {
	r := NewReadiness()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				r.Set(string(rune('a'+i)), j%2 == 0, "")
				r.Snapshot()
				<-r.Changed()
			}
		}(i)
	}
	// Changed must keep being closed while others Set; a final Set per key
	// wakes the last waiters.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			return
		case <-time.After(10 * time.Millisecond):
			r.Set("tick", true, "")
		}
	}
}

func TestLiveness(t *testing.T) {
	var l Liveness
	if l.Err() != nil {
		t.Error("zero Liveness must be healthy")
	}
	l.Set(errors.New("db stuck"))
	if l.Err() == nil || l.Err().Error() != "db stuck" {
		t.Errorf("Err = %v", l.Err())
	}
	l.Set(nil)
	if l.Err() != nil {
		t.Error("not healthy again")
	}
}
