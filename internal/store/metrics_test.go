package store

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetricsRegisteredAndShared(t *testing.T) {
	reg := prometheus.NewRegistry()
	ctx := context.Background()
	a, err := Open(ctx, testConfig(t), testLog(t), reg, Options{}, itemsSet())
	if err != nil {
		t.Fatal(err)
	}
	// A second DB on the same registry shares the collectors.
	b, err := Open(ctx, testConfig(t), testLog(t), reg, Options{}, itemsSet())
	if err != nil {
		t.Fatalf("second Open on the same registry: %v", err)
	}
	for _, db := range []*DB{a, b} {
		if err := db.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(`INSERT INTO items(id, v) VALUES (1, 'x')`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := db.Write(ctx, func(tx *sql.Tx) error { return errRejected }); err == nil {
			t.Fatal("want errRejected")
		}
	}
	names := map[string]bool{}
	for _, mf := range gather(t, reg) {
		names[mf.GetName()] = true
		if !strings.HasPrefix(mf.GetName(), "zhiyin_store_") {
			t.Errorf("metric %s lacks the zhiyin_store_ prefix", mf.GetName())
		}
	}
	for _, want := range []string{"zhiyin_store_batch_size", "zhiyin_store_commit_duration_seconds",
		"zhiyin_store_queue_depth", "zhiyin_store_write_errors_total"} {
		if !names[want] {
			t.Errorf("metric %s missing", want)
		}
	}
	if _, n := histogram(t, reg, "zhiyin_store_batch_size"); n != 4 {
		t.Errorf("batch_size sums to %v writes, want 4 from both DBs", n)
	}
	if c, _ := histogram(t, reg, "zhiyin_store_commit_duration_seconds"); c != 2 {
		t.Errorf("%d commits observed, want 2 (the failed writes commit nothing)", c)
	}
	if got := counter(t, reg, "zhiyin_store_write_errors_total", errKindFn); got != 2 {
		t.Errorf("fn errors = %v, want 2", got)
	}
	for _, mf := range gather(t, reg) {
		if mf.GetName() == "zhiyin_store_queue_depth" {
			if v := mf.GetMetric()[0].GetGauge().GetValue(); v != 0 {
				t.Errorf("queue depth %v after all writes returned, want 0", v)
			}
		}
	}
	a.Close()
	b.Close()
	// Close unregistered them: a reopen registers afresh.
	c, err := Open(ctx, testConfig(t), testLog(t), reg, Options{}, itemsSet())
	if err != nil {
		t.Fatalf("Open after Close on the same registry: %v", err)
	}
	c.Close()
}
