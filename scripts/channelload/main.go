// Command channelload is the load generator for the generic webhook channel:
// it POSTs signed messages to /channels/webhook/messages at a fixed rate
// (open loop) and is itself the customer's system that receives the replies
// (-listen), so it measures receipt to reply: from the moment a message is
// due to be sent to the moment its first reply arrives. Everything is local,
// so no platform time is included.
//
//	channelload -url http://127.0.0.1:18797 -listen 127.0.0.1:18796 -secret S -rate 2000 -duration 30s
//
// With -down the receiver answers every reply with 503 (a platform that is
// down): replies pile up in the outbox and the output says how many.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/zhiyin/zhiyin/channels/webhook"
)

var texts = []string{
	"我的快递SF1234567890到哪了", "你好", "在吗", "运费怎么算", "几天能到", "退款什么时候到账", "谢谢",
	"包邮吗", "你们客服几点下班", "中通75312345678901到哪了", "好的", "再见",
}

type result struct {
	TargetRPS   float64        `json:"target_rps"`
	Duration    float64        `json:"duration_s"`
	Sent        int64          `json:"sent"`
	Accepted    int64          `json:"accepted"`
	Errors      int64          `json:"errors"`
	ErrorKinds  map[string]int `json:"error_kinds,omitempty"`
	InRPS       float64        `json:"inbound_rps"`
	Replies     int64          `json:"replies"`
	Answered    int            `json:"messages_answered"`
	ReplyRPS    float64        `json:"reply_rps"`
	AckP50      float64        `json:"ack_p50_ms"`
	AckP99      float64        `json:"ack_p99_ms"`
	P50         float64        `json:"receipt_to_reply_p50_ms"`
	P90         float64        `json:"receipt_to_reply_p90_ms"`
	P99         float64        `json:"receipt_to_reply_p99_ms"`
	Max         float64        `json:"receipt_to_reply_max_ms"`
	Unanswered  int            `json:"unanswered_after_drain"`
	ServerRSSKB int64          `json:"server_rss_kb,omitempty"`
	ServerHWMKB int64          `json:"server_hwm_kb,omitempty"`
}

func main() {
	base := flag.String("url", "http://127.0.0.1:18797", "zhiyin base URL")
	listen := flag.String("listen", "127.0.0.1:18796", "where the replies arrive (channels.webhook.outbound_url)")
	secret := flag.String("secret", "", "channels.webhook.secret (also signs the replies we check)")
	rate := flag.Float64("rate", 2000, "messages per second")
	duration := flag.Duration("duration", 20*time.Second, "how long to send")
	convs := flag.Int("convs", 5000, "distinct conversations")
	conns := flag.Int("conns", 256, "keep-alive connections to zhiyin")
	drain := flag.Duration("drain", 10*time.Second, "how long to wait for the last replies")
	down := flag.Bool("down", false, "the receiver answers 503 (a platform that is down)")
	prefix := flag.String("prefix", strconv.FormatInt(time.Now().UnixNano(), 36), "message id prefix (distinct per run)")
	pid := flag.Int("pid", 0, "zhiyin's pid, to report its memory")
	flag.Parse()
	if *secret == "" {
		fmt.Fprintln(os.Stderr, "channelload: -secret is required")
		os.Exit(2)
	}

	// The receiver: the first reply to each message ends its latency.
	var (
		mu      sync.Mutex
		due     = map[string]time.Time{} // message id → when it was due
		lat     []float64
		replies atomic.Int64
	)
	srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		if *down {
			c.SetStatusCode(503)
			return
		}
		now := time.Now()
		sig := string(c.Request.Header.Peek("X-Zhiyin-Signature"))
		if sig != webhook.Sign(*secret, string(c.Request.Header.Peek("X-Zhiyin-Timestamp")), c.PostBody()) {
			c.SetStatusCode(401)
			return
		}
		var out struct {
			ReplyTo string `json:"reply_to"`
			Part    int    `json:"part"`
		}
		if json.Unmarshal(c.PostBody(), &out) != nil {
			c.SetStatusCode(400)
			return
		}
		replies.Add(1)
		mu.Lock()
		if t, ok := due[out.ReplyTo]; ok {
			lat = append(lat, float64(now.Sub(t).Microseconds())/1000)
			delete(due, out.ReplyTo)
		}
		mu.Unlock()
		c.SetStatusCode(200)
	}, Concurrency: 100_000}
	go func() {
		if err := srv.ListenAndServe(*listen); err != nil {
			fmt.Fprintln(os.Stderr, "channelload: receiver:", err)
			os.Exit(1)
		}
	}()
	time.Sleep(100 * time.Millisecond)

	client := &fasthttp.Client{MaxConnsPerHost: *conns, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, MaxConnWaitTimeout: 30 * time.Second}
	target := *base + "/channels/webhook/messages"
	var (
		sent, accepted, errs atomic.Int64
		kmu                  sync.Mutex
		kinds                = map[string]int{}
		acks                 []float64
	)
	interval := time.Duration(float64(time.Second) / *rate)
	start := time.Now()
	n := int(duration.Seconds() * *rate)
	var wg sync.WaitGroup
	sem := make(chan struct{}, *conns*4)
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		id := *prefix + "-" + strconv.Itoa(i)
		conv := "conv-" + strconv.Itoa(i%*convs)
		body, _ := json.Marshal(map[string]any{"id": id, "conversation": conv, "user": map[string]string{"id": "u-" + conv}, "text": texts[i%len(texts)]})
		mu.Lock()
		due[id] = at
		mu.Unlock()
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			ts := strconv.FormatInt(time.Now().Unix(), 10)
			req.SetRequestURI(target)
			req.Header.SetMethod("POST")
			req.Header.SetContentType("application/json")
			req.Header.Set("X-Zhiyin-Timestamp", ts)
			req.Header.Set("X-Zhiyin-Signature", webhook.Sign(*secret, ts, body))
			req.Header.Set("Idempotency-Key", id)
			req.SetBody(body)
			sent.Add(1)
			err := client.Do(req, resp)
			ack := float64(time.Since(at).Microseconds()) / 1000
			switch {
			case err != nil:
				errs.Add(1)
				kmu.Lock()
				kinds[err.Error()]++
				kmu.Unlock()
			case resp.StatusCode() != 202:
				errs.Add(1)
				kmu.Lock()
				kinds[strconv.Itoa(resp.StatusCode())]++
				kmu.Unlock()
			default:
				accepted.Add(1)
				kmu.Lock()
				acks = append(acks, ack)
				kmu.Unlock()
			}
		}()
	}
	wg.Wait()
	sendDur := time.Since(start)
	deadline := time.Now().Add(*drain)
	for time.Now().Before(deadline) {
		mu.Lock()
		left := len(due)
		mu.Unlock()
		if left == 0 || *down {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	r := result{TargetRPS: *rate, Duration: sendDur.Seconds(), Sent: sent.Load(), Accepted: accepted.Load(), Errors: errs.Load(),
		ErrorKinds: kinds, Replies: replies.Load(), Answered: len(lat), Unanswered: len(due)}
	r.InRPS = float64(r.Accepted) / sendDur.Seconds()
	r.ReplyRPS = float64(len(lat)) / sendDur.Seconds()
	slices.Sort(lat)
	r.P50, r.P90, r.P99, r.Max = pct(lat, 0.5), pct(lat, 0.9), pct(lat, 0.99), pct(lat, 1)
	mu.Unlock()
	slices.Sort(acks)
	r.AckP50, r.AckP99 = pct(acks, 0.5), pct(acks, 0.99)
	if len(kinds) == 0 {
		r.ErrorKinds = nil
	}
	if *pid > 0 {
		r.ServerRSSKB, r.ServerHWMKB = memOf(*pid)
	}
	json.NewEncoder(os.Stdout).Encode(r)
}

func pct(s []float64, p float64) float64 {
	if len(s) == 0 {
		return 0
	}
	i := int(float64(len(s)-1) * p)
	return float64(int(s[i]*100)) / 100
}

// memOf reads VmRSS and VmHWM of pid (KiB).
func memOf(pid int) (rss, hwm int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for line := range strings.Lines(string(b)) {
		var v int64
		if n, _ := fmt.Sscanf(line, "VmRSS: %d kB", &v); n == 1 {
			rss = v
		}
		if n, _ := fmt.Sscanf(line, "VmHWM: %d kB", &v); n == 1 {
			hwm = v
		}
	}
	return rss, hwm
}
