package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// blockWriter makes the writer run a fn that waits until release is called,
// so that the test can queue writes that will form the next batch.
func blockWriter(t *testing.T, db *DB) (release func()) {
	t.Helper()
	started := make(chan struct{})
	unblock := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.Write(context.Background(), func(tx *sql.Tx) error {
			close(started)
			<-unblock
			return nil
		})
	}()
	<-started
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(unblock)
			if err := <-done; err != nil {
				t.Errorf("blocking write: %v", err)
			}
		})
	}
	t.Cleanup(release)
	return release
}

// waitQueued waits until n writes wait in the queue.
func waitQueued(t *testing.T, db *DB, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(db.queue) < n {
		if time.Now().After(deadline) {
			t.Fatalf("queue has %d writes, want %d", len(db.queue), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// histogram returns count and sum of a histogram gathered from reg.
func histogram(t *testing.T, reg *prometheus.Registry, name string) (count uint64, sum float64) {
	t.Helper()
	for _, mf := range gather(t, reg) {
		if mf.GetName() == name {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0, 0
}

// counter returns the value of counter name with label kind.
func counter(t *testing.T, reg *prometheus.Registry, name, kind string) float64 {
	t.Helper()
	for _, mf := range gather(t, reg) {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == kind {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func gather(t *testing.T, reg *prometheus.Registry) []*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

func openWithReg(t *testing.T, cfg Config, sets ...MigrationSet) (*DB, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	db, err := Open(context.Background(), cfg, testLog(t), reg, Options{}, sets...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, reg
}

func TestWriteConcurrentAllPresent(t *testing.T) {
	const writers, perWriter = 64, 40
	db, reg := openWithReg(t, testConfig(t), itemsSet())
	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				id := w*perWriter + i + 1
				errs <- db.Write(context.Background(), func(tx *sql.Tx) error {
					_, err := tx.Exec(`INSERT INTO items(id, v) VALUES (?, ?)`, id, fmt.Sprint("w", w))
					return err
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if n := count(t, db.Read(), "items"); n != writers*perWriter {
		t.Fatalf("items = %d, want %d", n, writers*perWriter)
	}
	var sum int
	if err := db.Read().QueryRow(`SELECT sum(id) FROM items`).Scan(&sum); err != nil {
		t.Fatal(err)
	}
	if n := writers * perWriter; sum != n*(n+1)/2 {
		t.Fatalf("sum(id) = %d: ids missing or duplicated", sum)
	}
	batches, writes := histogram(t, reg, "zhiyin_store_batch_size")
	if int(writes) != writers*perWriter {
		t.Errorf("batch size histogram counts %v writes, want %d", writes, writers*perWriter)
	}
	if batches >= uint64(writers*perWriter) {
		t.Errorf("%d batches for %d writes: group commit never grouped", batches, writers*perWriter)
	}
	t.Logf("%d writes in %d batches", writers*perWriter, batches)
}

var errRejected = errors.New("rejected by fn")

func TestFailingFnDoesNotAffectOthersInBatch(t *testing.T) {
	db, reg := openWithReg(t, testConfig(t), itemsSet())
	if err := db.Write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO items(id, v) VALUES (1000, 'taken')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	release := blockWriter(t, db)

	// kind of each write: ok inserts a row; reject inserts and then returns
	// its own error; dup violates the primary key; panics panics.
	kinds := []string{"ok", "reject", "ok", "dup", "ok", "panics", "ok", "reject", "ok"}
	type result struct {
		err      error
		panicked any
	}
	results := make([]result, len(kinds))
	var wg sync.WaitGroup
	for i, kind := range kinds {
		wg.Go(func() {
			defer func() { results[i].panicked = recover() }()
			results[i].err = db.Write(context.Background(), func(tx *sql.Tx) error {
				id := i + 1
				if kind == "dup" {
					id = 1000
				}
				if _, err := tx.Exec(`INSERT INTO items(id, v) VALUES (?, ?)`, id, kind); err != nil {
					return err
				}
				switch kind {
				case "reject":
					return errRejected
				case "panics":
					panic("fn bug")
				}
				return nil
			})
		})
		// Queue in order so that the batch runs them in this order.
		waitQueued(t, db, i+1)
	}
	_, before := histogram(t, reg, "zhiyin_store_batch_size")
	release()
	wg.Wait()

	for i, kind := range kinds {
		r := results[i]
		var n int
		if err := db.Read().QueryRow(`SELECT count(*) FROM items WHERE id = ?`, i+1).Scan(&n); err != nil {
			t.Fatal(err)
		}
		switch kind {
		case "ok":
			if r.err != nil || n != 1 {
				t.Errorf("write %d (ok): err = %v, rows = %d", i, r.err, n)
			}
		case "reject":
			if !errors.Is(r.err, errRejected) || n != 0 {
				t.Errorf("write %d (reject): err = %v, rows = %d; want errRejected and its insert rolled back", i, r.err, n)
			}
		case "dup":
			if r.err == nil || !strings.Contains(r.err.Error(), "UNIQUE") {
				t.Errorf("write %d (dup): err = %v, want the constraint error", i, r.err)
			}
		case "panics":
			if r.panicked != "fn bug" || n != 0 {
				t.Errorf("write %d (panics): recovered %v, rows = %d; want the panic re-raised and its insert rolled back", i, r.panicked, n)
			}
		}
	}
	var v string
	if err := db.Read().QueryRow(`SELECT v FROM items WHERE id = 1000`).Scan(&v); err != nil || v != "taken" {
		t.Errorf("row 1000 = %q, %v", v, err)
	}
	_, after := histogram(t, reg, "zhiyin_store_batch_size")
	if got := after - before; got < float64(len(kinds)) {
		t.Errorf("the queued writes ran in batches summing to %v, want them in one batch of %d", got, len(kinds))
	}
	if got := counter(t, reg, "zhiyin_store_write_errors_total", errKindFn); got != 4 {
		t.Errorf("fn errors counted = %v, want 4", got)
	}
	// The writer survived the panic.
	if err := db.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestWriteContextCancelledBeforeStart(t *testing.T) {
	db := openT(t, testConfig(t), Options{}, itemsSet())

	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		ran := false
		err := db.Write(ctx, func(tx *sql.Tx) error { ran = true; return nil })
		if !errors.Is(err, context.Canceled) || ran {
			t.Fatalf("err = %v, ran = %v", err, ran)
		}
	})

	t.Run("cancelled while queued", func(t *testing.T) {
		release := blockWriter(t, db)
		ctx, cancel := context.WithCancel(context.Background())
		var ran atomic.Bool
		errc := make(chan error, 1)
		go func() {
			errc <- db.Write(ctx, func(tx *sql.Tx) error {
				ran.Store(true)
				_, err := tx.Exec(`INSERT INTO items(id, v) VALUES (1, 'x')`)
				return err
			})
		}()
		waitQueued(t, db, 1)
		cancel()
		// Write returns while the writer is still blocked.
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Write did not return after its ctx was cancelled")
		}
		release()
		if err := db.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		if ran.Load() {
			t.Fatal("fn of a cancelled write ran")
		}
		if n := count(t, db.Read(), "items"); n != 0 {
			t.Fatalf("items = %d", n)
		}
	})

	t.Run("cancelled after start", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		err := db.Write(ctx, func(tx *sql.Tx) error {
			cancel()
			_, err := tx.Exec(`INSERT INTO items(id, v) VALUES (2, 'x')`)
			return err
		})
		if err != nil {
			t.Fatalf("err = %v, want the real result nil", err)
		}
		if n := count(t, db.Read(), "items"); n != 1 {
			t.Fatalf("items = %d, want 1", n)
		}
	})
}

func TestFullQueueBlocksUntilContextEnds(t *testing.T) {
	cfg := testConfig(t)
	cfg.GroupCommit.QueueSize = 1
	db := openT(t, cfg, Options{}, itemsSet())
	release := blockWriter(t, db)
	go db.Write(context.Background(), func(tx *sql.Tx) error { return nil })
	waitQueued(t, db, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	ran := false
	err := db.Write(ctx, func(tx *sql.Tx) error { ran = true; return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	release()
	if err := db.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ran {
		t.Fatal("fn of a write that never got into the queue ran")
	}
}

func TestBusyMapsToErrBusy(t *testing.T) {
	cfg := testConfig(t)
	cfg.BusyTimeout = 50 * time.Millisecond
	db, reg := openWithReg(t, cfg, itemsSet())

	// Another process (here: another connection) holds the write lock.
	other := rawOpen(t, cfg.Path)
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	err = db.Write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO items(id, v) VALUES (1, 'x')`)
		return err
	})
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("err = %v, want ErrBusy", err)
	}
	if got := counter(t, reg, "zhiyin_store_write_errors_total", errKindBusy); got != 1 {
		t.Errorf("busy errors counted = %v", got)
	}
	if _, err := conn.ExecContext(context.Background(), `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if err := db.Write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO items(id, v) VALUES (1, 'x')`)
		return err
	}); err != nil {
		t.Fatalf("Write after the lock was released: %v", err)
	}
}

func TestDiskFullMapsToErrFullAndNothingIsLostSilently(t *testing.T) {
	db, reg := openWithReg(t, testConfig(t), itemsSet())
	var pages int
	if err := db.Read().QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	// Cap the file a few pages above its size: big inserts hit SQLITE_FULL.
	if err := db.Write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(fmt.Sprintf(`PRAGMA max_page_count = %d`, pages+8))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	release := blockWriter(t, db)
	sizes := []int{100, 1 << 20, 100, 1 << 20, 100}
	errs := make([]error, len(sizes))
	var wg sync.WaitGroup
	for i, size := range sizes {
		wg.Go(func() {
			errs[i] = db.Write(context.Background(), func(tx *sql.Tx) error {
				_, err := tx.Exec(`INSERT INTO items(id, v) VALUES (?, ?)`, i+1, strings.Repeat("x", size))
				return err
			})
		})
		waitQueued(t, db, i+1)
	}
	release()
	wg.Wait()
	for i, size := range sizes {
		var n int
		if err := db.Read().QueryRow(`SELECT count(*) FROM items WHERE id = ?`, i+1).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if size > 1000 && !errors.Is(errs[i], ErrFull) {
			t.Errorf("write %d of %d bytes: err = %v, want ErrFull", i, size, errs[i])
		}
		t.Logf("write %d (%d bytes): err=%v rows=%d", i, size, errs[i], n)
		// The invariant: nil ⇔ committed.
		if (errs[i] == nil) != (n == 1) {
			t.Errorf("write %d: err = %v but rows = %d", i, errs[i], n)
		}
	}
	if got := counter(t, reg, "zhiyin_store_write_errors_total", errKindFull); got < 2 {
		t.Errorf("full errors counted = %v, want ≥ 2", got)
	}
}

func TestCloseDrainsQueueAndRefusesLaterWrites(t *testing.T) {
	cfg := testConfig(t)
	db, err := Open(context.Background(), cfg, testLog(t), nil, Options{Exclusive: true}, itemsSet())
	if err != nil {
		t.Fatal(err)
	}
	release := blockWriter(t, db)
	const n = 20
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- db.Write(context.Background(), func(tx *sql.Tx) error {
				_, err := tx.Exec(`INSERT INTO items(id, v) VALUES (?, 'x')`, i+1)
				return err
			})
		}()
	}
	waitQueued(t, db, n)
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	// Close has stopped new writes before draining the old ones.
	deadline := time.Now().Add(10 * time.Second)
	for !db.isClosed() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := db.Write(context.Background(), func(tx *sql.Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write during Close: err = %v, want ErrClosed", err)
	}
	release()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("queued write: %v", err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := db.Ping(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping after Close: %v", err)
	}
	if err := db.Backup(context.Background(), cfg.Path+".bak"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Backup after Close: %v", err)
	}
	var nilDB *DB
	if err := nilDB.Close(); err != nil {
		t.Fatal(err)
	}
	// Checkpointed: no WAL left, every write in the file.
	if fi, err := os.Stat(cfg.Path + "-wal"); err == nil && fi.Size() > 0 {
		t.Errorf("WAL of %d bytes left after Close", fi.Size())
	}
	raw := rawOpen(t, cfg.Path)
	var got int
	if err := raw.QueryRow(`SELECT count(*) FROM items`).Scan(&got); err != nil || got != n {
		t.Fatalf("items after Close = %d, %v; want %d", got, err, n)
	}
}

func TestReadPoolIsReadOnly(t *testing.T) {
	db := openT(t, testConfig(t), Options{}, itemsSet())
	if _, err := db.Read().Exec(`INSERT INTO items(id, v) VALUES (1, 'x')`); err == nil {
		t.Fatal("insert through the read pool succeeded")
	}
	if err := db.Write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO items(id, v) VALUES (1, 'x')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// A reader sees a write that has returned.
	if n := count(t, db.Read(), "items"); n != 1 {
		t.Fatalf("items = %d", n)
	}
	var fk int
	if err := db.Read().QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys on the read pool = %d, %v", fk, err)
	}
}

func TestWriterConnectionSettings(t *testing.T) {
	cfg := testConfig(t)
	cfg.JournalSizeLimit = 1 << 20
	db := openT(t, cfg, Options{}, itemsSet())
	var journal string
	var sync, fk, limit, busy int
	err := db.Write(context.Background(), func(tx *sql.Tx) error {
		for _, q := range []struct {
			pragma string
			dst    any
		}{
			{"journal_mode", &journal}, {"synchronous", &sync}, {"foreign_keys", &fk},
			{"journal_size_limit", &limit}, {"busy_timeout", &busy},
		} {
			if err := tx.QueryRow(`PRAGMA ` + q.pragma).Scan(q.dst); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if journal != "wal" || sync != 2 || fk != 1 || limit != 1<<20 || busy != 5000 {
		t.Fatalf("journal_mode=%s synchronous=%d foreign_keys=%d journal_size_limit=%d busy_timeout=%d",
			journal, sync, fk, limit, busy)
	}
}

func TestLingerGroupsSequentialWriters(t *testing.T) {
	cfg := testConfig(t)
	cfg.GroupCommit.MaxWait = 200 * time.Millisecond
	cfg.GroupCommit.MaxBatch = 8
	db, reg := openWithReg(t, cfg, itemsSet())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := db.Write(context.Background(), func(tx *sql.Tx) error {
				_, err := tx.Exec(`INSERT INTO items(id, v) VALUES (?, 'x')`, i+1)
				return err
			}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	batches, writes := histogram(t, reg, "zhiyin_store_batch_size")
	if writes != 8 || batches > 4 {
		t.Errorf("%v writes in %d batches; with a 200ms linger they should share few", writes, batches)
	}
}
