package webhook

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

type nopSink struct{}

func (nopSink) Deliver(context.Context, *channels.Message) error { return nil }
func (nopSink) Rejected(channels.Reason)                         {}

// discardWriter is a ResponseWriter that keeps the status only.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

type bodyReader struct {
	b []byte
	i int
}

func (r *bodyReader) Read(p []byte) (int, error) {
	if r.i >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.i:])
	r.i += n
	return n, nil
}
func (r *bodyReader) Close() error { return nil }

// BenchmarkInbound is one inbound message end to end inside the adapter:
// the sender signs it, the handler reads, verifies (timestamp, HMAC,
// replay guard), decodes strictly and delivers to a sink that does nothing.
func BenchmarkInbound(b *testing.B) {
	a, err := New(testConfig("https://example.com/r"), testLog(b))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	a.now = func() time.Time { return now }
	a.Start(context.Background(), nopSink{})
	defer a.Stop(context.Background())
	h := a.Routes()[0].Handler
	ts := strconv.FormatInt(now.Unix(), 10)
	const head = `{"id":"m`
	const tail = `","conversation":"conv-123456","conversation_type":"direct","user":{"id":"user-123456","name":"张三"},"text":"你好，我想查一下订单 123456 的物流，谢谢","time":1718000000123}`
	req, _ := http.NewRequest(http.MethodPost, Path, nil)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderTimestamp, ts)
	body := &bodyReader{}
	w := &discardWriter{h: http.Header{}}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		buf = append(strconv.AppendInt(append(buf[:0], head...), int64(i), 10), tail...)
		req.Header[HeaderSignature] = []string{Sign(testSecret, ts, buf)}
		req.Header[HeaderIdempotency] = req.Header[HeaderSignature] // unique per message
		body.b, body.i = buf, 0
		req.Body = body
		req.ContentLength = int64(len(buf))
		h.ServeHTTP(w, req)
		if w.code != http.StatusAccepted {
			b.Fatalf("status %d", w.code)
		}
	}
}
