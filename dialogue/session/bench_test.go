package session

import (
	"context"
	"database/sql"
	"runtime"
	"testing"
	"time"
)

// benchCallers is the number of concurrent callers of the benchmarks.
const benchCallers = 64

var (
	benchState = []byte(`{"slots":{"order_id":"A12345678","phone":"13800138000"},"stack":[{"form":"refund","slot":"reason"}],"intents":["order_status","refund"]}`)
)

func benchTurn() *Turn {
	return &Turn{User: "我想退货，订单号A12345678", Replies: []string{"好的，请问退货原因是什么？"}, Intent: "refund", Confidence: 0.97, Lane: "normal"}
}

// BenchmarkSaveTx measures the engine's write path from 64 concurrent
// callers sharing the group commit, under both storage.synchronous
// settings. Each op is one store.DB.Write holding one SaveTx with one turn
// (state and turn sealed):
//
//   - new: a new session (insert) — reports sessions/s;
//
//   - turn: the next turn of a session each caller keeps (update, the
//     common case) — reports turns/s.
//
//     go test ./dialogue/session -run '^$' -bench SaveTx -benchtime 3s
func BenchmarkSaveTx(b *testing.B) {
	for _, sync := range []string{"full", "normal"} {
		b.Run("new/synchronous="+sync, func(b *testing.B) {
			e := newEnv(b, Options{Now: time.Now}, sync)
			runParallel(b, "sessions/s", func() func(ctx context.Context) error {
				return func(ctx context.Context) error {
					sess := &Session{Key: Key{Channel: "web", Conversation: NewID(), User: "u"}, State: benchState}
					turn := benchTurn()
					return e.db.Write(ctx, func(tx *sql.Tx) error { return e.st.SaveTx(tx, sess, turn) })
				}
			})
		})
		b.Run("turn/synchronous="+sync, func(b *testing.B) {
			e := newEnv(b, Options{Now: time.Now}, sync)
			runParallel(b, "turns/s", func() func(ctx context.Context) error {
				sess := &Session{Key: Key{Channel: "web", Conversation: NewID(), User: "u"}, State: benchState}
				return func(ctx context.Context) error {
					next := *sess
					turn := benchTurn()
					if err := e.db.Write(ctx, func(tx *sql.Tx) error { return e.st.SaveTx(tx, &next, turn) }); err != nil {
						return err
					}
					*sess = next
					return nil
				}
			})
		})
	}
}

// runParallel runs b.N ops over benchCallers goroutines, each with its own
// op from newOp, and reports ops per second as unit.
func runParallel(b *testing.B, unit string, newOp func() func(ctx context.Context) error) {
	b.SetParallelism(max(1, benchCallers/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		op := newOp()
		for pb.Next() {
			if err := op(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), unit)
}
