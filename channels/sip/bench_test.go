package sip

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// BenchmarkCallSetup measures INVITE sent → 200 OK received for calls from
// a sipgo client over loopback UDP, each then ACKed and hung up. It
// reports the median and p95 setup time (the answerer does no work, so
// this is the signalling and media allocation cost).
func BenchmarkCallSetup(b *testing.B) {
	a := newTestAnswerer()
	a.calls = make(chan *testHandler, b.N+16)
	s := startServer(b, a, nil)

	rtpSink, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer rtpSink.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := rtpSink.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	rtpPort := rtpSink.LocalAddr().(*net.UDPAddr).Port

	ua, err := sipgo.NewUA(sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(testLog(b))),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(testLog(b))))
	if err != nil {
		b.Fatal(err)
	}
	defer ua.Close()
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientLogger(testLog(b)))
	if err != nil {
		b.Fatal(err)
	}
	dua := sipgo.DialogUA{Client: client, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "bench", Host: "127.0.0.1"}}}
	target := sip.Uri{Scheme: "sip", User: "zhiyin", Host: "127.0.0.1", Port: int(s.Addr().Port())}
	offer := []byte(fmt.Sprintf("v=0\r\no=bench 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n", rtpPort))

	setups := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		d, err := dua.Invite(ctx, target, offer, sip.NewHeader("Content-Type", "application/sdp"))
		if err != nil {
			b.Fatal(err)
		}
		if err := d.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
			b.Fatal(err)
		}
		setups = append(setups, time.Since(start))
		if err := d.Ack(ctx); err != nil {
			b.Fatal(err)
		}
		if err := d.Bye(ctx); err != nil {
			b.Fatal(err)
		}
		_ = d.Close()
		cancel()
	}
	b.StopTimer()
	waitCalls(b, s, 0)
	slices.Sort(setups)
	b.ReportMetric(float64(setups[len(setups)/2].Microseconds())/1000, "setup-p50-ms")
	b.ReportMetric(float64(setups[len(setups)*95/100].Microseconds())/1000, "setup-p95-ms")
}
