package store

import (
	"context"
	"database/sql"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchWriters is the number of concurrent writers of BenchmarkWrite.
const benchWriters = 64

func benchSet() MigrationSet {
	return set("bench", map[string]string{
		"0001_rows.sql": `CREATE TABLE rows (id INTEGER PRIMARY KEY, g INTEGER NOT NULL, v TEXT NOT NULL);`,
	})
}

// BenchmarkWrite compares group commit with the naive baseline — one
// transaction and one fsync per write on a single connection with the same
// settings (WAL, synchronous=FULL) — under 64 concurrent writers each
// inserting one row per write. It reports writes/s and p50/p99 latency of
// one write; compare the two writes/s for the speed-up.
//
//	go test ./internal/store -run '^$' -bench Write -benchtime 3s
func BenchmarkWrite(b *testing.B) {
	b.Run("group-commit", func(b *testing.B) {
		cfg := testConfig(b)
		db := openT(b, cfg, Options{Exclusive: true}, benchSet())
		runWriters(b, func(g, i int) error {
			return db.Write(context.Background(), func(tx *sql.Tx) error {
				_, err := tx.Exec(`INSERT INTO rows(g, v) VALUES (?, 'payload of one write')`, g)
				return err
			})
		})
		b.StopTimer()
		if n := count(b, db.Read(), "rows"); n != b.N {
			b.Fatalf("rows = %d, want %d", n, b.N)
		}
	})
	b.Run("naive-tx-per-write", func(b *testing.B) {
		cfg := testConfig(b)
		db := openT(b, cfg, Options{Exclusive: true}, benchSet())
		// The same DSN as the writer, used the naive way.
		naive := sql.OpenDB(newConnector(writerDSN(db.Path(), cfg), cfg))
		naive.SetMaxOpenConns(1)
		defer naive.Close()
		runWriters(b, func(g, i int) error {
			tx, err := naive.Begin()
			if err != nil {
				return err
			}
			if _, err := tx.Exec(`INSERT INTO rows(g, v) VALUES (?, 'payload of one write')`, g); err != nil {
				tx.Rollback()
				return err
			}
			return tx.Commit()
		})
		b.StopTimer()
		if n := count(b, db.Read(), "rows"); n != b.N {
			b.Fatalf("rows = %d, want %d", n, b.N)
		}
	})
}

// runWriters runs b.N calls of write spread over benchWriters goroutines and
// reports throughput and latency percentiles.
func runWriters(b *testing.B, write func(g, i int) error) {
	var next atomic.Int64
	lat := make([][]time.Duration, benchWriters)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for g := range benchWriters {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if err := write(g, i); err != nil {
					b.Error(err)
					return
				}
				lat[g] = append(lat[g], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	pct := func(p float64) float64 {
		return float64(all[int(p*float64(len(all)-1))].Microseconds())
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "writes/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(0, "ns/op") // per-op time over 64 writers is meaningless
}
