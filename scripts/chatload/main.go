// Command chatload is the load generator for POST /v1/chat: open-loop at a
// fixed request rate (latency measured from each request's scheduled time,
// so a stalled server cannot hide its queueing) or closed-loop at full
// speed, over a fixed number of keep-alive connections. It also serves the
// bare fiber handler the benchmark compares against (-bare-listen).
//
//	chatload -url http://127.0.0.1:18789/v1/chat -conns 1000 -rate 3000 -duration 30s
//	chatload -bare-listen 127.0.0.1:18790
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// texts are customer messages of the embedded e-commerce domain, in the mix
// a shop sees: tracking, returns, FAQ, chit-chat, some forms continued.
var texts = []string{
	"我的快递SF1234567890到哪了", "你好", "在吗", "我要退货", "订单号20241234567890", "质量有问题，屏幕有划痕",
	"运费怎么算", "几天能到", "退款什么时候到账", "我要开发票", "帮我取消订单20241234567891", "谢谢",
	"我想改一下收货地址", "转人工", "算了", "好的", "不是", "再见", "包邮吗", "中通75312345678901到哪了",
	"我的退款到哪一步了 订单20241234567892", "继续刚才的问题", "你们客服几点下班", "东西坏了太气人了我要投诉",
}

type result struct {
	Mode       string         `json:"mode"`
	URL        string         `json:"url"`
	Conns      int            `json:"conns"`
	TargetRPS  float64        `json:"target_rps"`
	Duration   float64        `json:"duration_s"`
	Requests   int            `json:"requests"`
	Errors     int            `json:"errors"`
	ErrorKinds map[string]int `json:"error_kinds,omitempty"`
	RPS        float64        `json:"achieved_rps"`
	P50        float64        `json:"p50_ms"`
	P90        float64        `json:"p90_ms"`
	P99        float64        `json:"p99_ms"`
	Max        float64        `json:"max_ms"`
	Mean       float64        `json:"mean_ms"`
	ServerRSS  int64          `json:"server_rss_kb,omitempty"`
	ServerHWM  int64          `json:"server_hwm_kb,omitempty"`
}

func main() {
	target := flag.String("url", "http://127.0.0.1:18789/v1/chat", "POST target")
	conns := flag.Int("conns", 1000, "concurrent keep-alive connections")
	rate := flag.Float64("rate", 3000, "requests per second (0: closed loop, as fast as the connections go)")
	dur := flag.Duration("duration", 20*time.Second, "how long to send")
	users := flag.Int("users", 100000, "distinct user ids (each is a session)")
	userPrefix := flag.String("user-prefix", "u", "user id prefix (a new prefix makes new sessions)")
	pid := flag.Int("pid", 0, "server pid whose RSS to report")
	bare := flag.String("bare-listen", "", "serve the bare fiber handler on this address instead")
	maxReq := flag.Int64("requests", 0, "closed loop: stop after this many requests (0: run for -duration)")
	flag.Parse()
	if *bare != "" {
		serveBare(*bare)
		return
	}
	res, err := run(*target, *conns, *rate, *dur, *users, *userPrefix, *maxReq)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chatload:", err)
		os.Exit(1)
	}
	if *pid > 0 {
		res.ServerRSS, res.ServerHWM = rss(*pid)
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if res.Errors > 0 {
		os.Exit(3)
	}
}

// serveBare answers POST /v1/chat with a fixed reply of the real one's size
// and shape, with fiber's defaults: the floor any handler stands on.
func serveBare(addr string) {
	app := fiber.New(fiber.Config{DisableStartupMessage: true, Concurrency: 20000})
	reply := []byte(`{"session_id":"0123456789abcdef0123456789abcdef","replies":[{"text":"您好，我是知音客服，请问有什么可以帮您？"}],"intent":{"name":"greet","confidence":0.98},"entities":[],"slots":{},"lane":"normal","handoff":false}`)
	app.Post("/v1/chat", func(c *fiber.Ctx) error {
		var req map[string]any
		if err := json.Unmarshal(c.Body(), &req); err != nil {
			return c.SendStatus(400)
		}
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(reply)
	})
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt)
		<-sig
		_ = app.Shutdown()
	}()
	if err := app.Listen(addr); err != nil {
		fmt.Fprintln(os.Stderr, "chatload:", err)
		os.Exit(1)
	}
}

func run(target string, conns int, rate float64, dur time.Duration, users int, prefix string, maxReq int64) (*result, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("bad -url %q", target)
	}
	bodies := make([][]byte, 0, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 4096; i++ {
		b, _ := json.Marshal(map[string]string{"user_id": fmt.Sprintf("%s%d", prefix, rng.IntN(users)), "text": texts[rng.IntN(len(texts))]})
		bodies = append(bodies, b)
	}
	var userSeq atomic.Int64
	body := func(i int64) []byte {
		// Every request a fresh user until -users is reached, so the run
		// leaves that many sessions; then users repeat (multi-turn).
		n := userSeq.Add(1)
		b := bodies[i%int64(len(bodies))]
		if n <= int64(users) {
			b, _ = json.Marshal(map[string]string{"user_id": fmt.Sprintf("%s%d", prefix, n-1), "text": texts[int(n)%len(texts)]})
		}
		return b
	}

	type sample struct {
		lat  time.Duration
		kind string
	}
	var mu sync.Mutex
	var lats []time.Duration
	kinds := map[string]int{}
	record := func(s []sample) {
		mu.Lock()
		for _, x := range s {
			if x.kind != "" {
				kinds[x.kind]++
			} else {
				lats = append(lats, x.lat)
			}
		}
		mu.Unlock()
	}

	tickets := make(chan time.Time, 1<<20)
	var wg sync.WaitGroup
	var seq atomic.Int64
	start := time.Now()
	deadline := start.Add(dur)
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &fasthttp.HostClient{Addr: u.Host, MaxConns: 1, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			req.SetRequestURI(target)
			req.Header.SetMethod("POST")
			req.Header.SetContentType("application/json")
			var local []sample
			for {
				var sched time.Time
				if rate > 0 {
					t, ok := <-tickets
					if !ok {
						break
					}
					sched = t
				} else {
					if time.Now().After(deadline) || (maxReq > 0 && seq.Load() >= maxReq) {
						break
					}
					sched = time.Now()
				}
				req.SetBody(body(seq.Add(1)))
				err := hc.Do(req, resp)
				lat := time.Since(sched)
				switch {
				case err != nil:
					local = append(local, sample{kind: "net: " + firstWord(err.Error())})
				case resp.StatusCode() != 200:
					local = append(local, sample{kind: fmt.Sprintf("http %d", resp.StatusCode())})
				default:
					local = append(local, sample{lat: lat})
				}
				if len(local) >= 256 {
					record(local)
					local = local[:0]
				}
			}
			record(local)
		}()
	}
	if rate > 0 {
		interval := time.Duration(float64(time.Second) / rate)
		next := start
		for next.Before(deadline) {
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
			// Catch up in bursts after an oversleep: the schedule, not the
			// sleeper, decides when a request was due.
			now := time.Now()
			for !next.After(now) && next.Before(deadline) {
				tickets <- next
				next = next.Add(interval)
			}
		}
		close(tickets)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()

	slices.Sort(lats)
	res := &result{Mode: "open", URL: target, Conns: conns, TargetRPS: rate, Duration: elapsed, ErrorKinds: kinds}
	if rate == 0 {
		res.Mode = "closed"
	}
	res.Requests = len(lats)
	for _, n := range kinds {
		res.Errors += n
		res.Requests += n
	}
	res.RPS = float64(len(lats)) / elapsed
	if len(lats) > 0 {
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		q := func(p float64) float64 { return ms(lats[int(p*float64(len(lats)-1))]) }
		res.P50, res.P90, res.P99, res.Max = q(.5), q(.9), q(.99), ms(lats[len(lats)-1])
		var sum time.Duration
		for _, l := range lats {
			sum += l
		}
		res.Mean = ms(sum / time.Duration(len(lats)))
	}
	return res, nil
}

func firstWord(s string) string {
	if i := strings.IndexAny(s, ":"); i > 0 {
		return s[:i]
	}
	return s
}

// rss reads a process's resident and peak resident set size in KiB.
func rss(pid int) (cur, peak int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var v int64
		if _, err := fmt.Sscanf(line, "VmRSS: %d kB", &v); err == nil {
			cur = v
		}
		if _, err := fmt.Sscanf(line, "VmHWM: %d kB", &v); err == nil {
			peak = v
		}
	}
	return cur, peak
}
