package dialogue

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhiyin/zhiyin/dialogue/domain"
	"github.com/zhiyin/zhiyin/dialogue/domain/builtin"
	"github.com/zhiyin/zhiyin/dialogue/lanes"
	"github.com/zhiyin/zhiyin/dialogue/nlu"
	"github.com/zhiyin/zhiyin/dialogue/session"
	"github.com/zhiyin/zhiyin/dialogue/skill"
	"github.com/zhiyin/zhiyin/dialogue/skill/orders"
	"github.com/zhiyin/zhiyin/inference/inferencetest"
	"github.com/zhiyin/zhiyin/internal/store"
	"github.com/zhiyin/zhiyin/internal/store/storetest"
)

// builtinEngine serves the embedded demo domain with its trained model,
// the demo order skill and a real database: what `make run` serves.
func builtinEngine(tb testing.TB) *Engine {
	tb.Helper()
	rt := inferencetest.Need(tb, testRT, testRTErr)
	ctx := context.Background()
	dir := tb.TempDir()
	db := storetest.Open(tb, store.DefaultConfig(),
		store.MigrationSet{Component: session.MigrationComponent, FS: session.Migrations()},
		store.MigrationSet{Component: orders.MigrationComponent, FS: orders.Migrations()})
	keys, err := session.LoadKeyring(filepath.Join(dir, "sessions.keys"), true)
	if err != nil {
		tb.Fatal(err)
	}
	model := filepath.Join(dir, "model")
	if err := os.CopyFS(model, builtin.Model()); err != nil {
		tb.Fatal(err)
	}
	ncfg := nlu.DefaultConfig()
	p, err := nlu.Load(ctx, rt, model, ncfg.Options())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	dom, err := domain.LoadFS(builtin.Domain(), builtin.Source)
	if err != nil {
		tb.Fatal(err)
	}
	reg := skill.NewRegistry()
	if err := reg.Register(orders.New(db)); err != nil {
		tb.Fatal(err)
	}
	pool, err := lanes.NewPool(lanes.DefaultConfig(), prometheus.NewRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	e, err := New(DefaultConfig(), dom, Deps{DB: db, Store: session.New(db, keys, session.Options{}), Skills: reg, Pool: pool,
		NLU: func() Parser { return p }})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

var benchTexts = []string{
	"我的快递SF1234567890到哪了", "你好", "我要退货", "订单号20241234567890", "运费怎么算", "几天能到",
	"退款什么时候到账", "我要开发票", "谢谢", "转人工", "算了", "再见",
}

// BenchmarkHandleBuiltin is one turn of the demo through the whole engine:
// lane, NLU (ONNX Runtime), policy, skill, sealed save with group commit.
func BenchmarkHandleBuiltin(b *testing.B) {
	e := builtinEngine(b)
	var n atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			_, err := e.Handle(context.Background(), Message{User: fmt.Sprintf("u%d", i%5000), Text: benchTexts[i%int64(len(benchTexts))]})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
