package slack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/channels/channelstest"
	"github.com/zhiyin/zhiyin/internal/config"
)

const (
	testSecret  = "8f742231b10e8888abcd99yyyzzz85a5"
	testBotUser = "UBOT"
	testNow     = 1700000000
)

// TestSignatureVector is PROTOCOLS.md's published Slack vector.
func TestSignatureVector(t *testing.T) {
	body := "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	const want = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
	if got := Sign(testSecret, "1531420618", []byte(body)); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	if !checkSignature(testSecret, "1531420618", want, []byte(body)) {
		t.Fatal("checkSignature refused the published vector")
	}
	if checkSignature(testSecret, "1531420619", want, []byte(body)) {
		t.Fatal("checkSignature accepted another timestamp")
	}

	// The same through the handler, at the vector's time: a slash command
	// body is no event, but it must pass verification and be refused as
	// malformed JSON (400), not as forged (401).
	a, sink := newEventsAdapter(t, nil)
	a.now = func() time.Time { return time.Unix(1531420618, 0) }
	req := httptest.NewRequest(http.MethodPost, EventsPath, strings.NewReader(body))
	req.Header.Set(hdrTimestamp, "1531420618")
	req.Header.Set(hdrSignature, want)
	rec := httptest.NewRecorder()
	a.serveEvents(rec, req)
	if rec.Code != http.StatusBadRequest || sink.Rejections(channels.ReasonSignature) != 0 || sink.Rejections(channels.ReasonMalformed) != 1 {
		t.Fatalf("vector request: %d, signature rejects %d", rec.Code, sink.Rejections(channels.ReasonSignature))
	}
}

// newEventsAdapter starts an events-mode adapter with a fixed clock and a
// configured bot user (no auth.test).
func newEventsAdapter(t *testing.T, mutate func(*Config)) (*Adapter, *channelstest.Sink) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Enabled = true
	cfg.BotToken = config.NewSecret("xoxb-test")
	cfg.SigningSecret = config.NewSecret(testSecret)
	cfg.BotUserID = testBotUser
	cfg.APIBase = "http://127.0.0.1:1" // never called
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { return time.Unix(testNow, 0) }
	sink := channelstest.NewSink()
	if err := a.Start(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	return a, sink
}

// post sends body signed at ts (with the test secret) through the route,
// with extra headers, and returns the recorder.
func post(t *testing.T, a *Adapter, body string, ts int64, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := signedRequest(body, ts, hdr...)
	rec := httptest.NewRecorder()
	routes := a.Routes()
	if len(routes) != 1 || routes[0].Path != EventsPath || routes[0].Method != http.MethodPost {
		t.Fatalf("routes = %+v", routes)
	}
	routes[0].Handler.ServeHTTP(rec, req)
	return rec
}

func signedRequest(body string, ts int64, hdr ...string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, EventsPath, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	tss := strconv.FormatInt(ts, 10)
	req.Header.Set(hdrTimestamp, tss)
	req.Header.Set(hdrSignature, Sign(testSecret, tss, []byte(body)))
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	return req
}

// callback builds an event_callback body around an event.
func callback(eventID, ev string) string {
	return `{"token":"x","team_id":"T1","api_app_id":"A1","type":"event_callback","event_id":"` + eventID +
		`","event_time":1700000000,"authorizations":[{"team_id":"T1","user_id":"UBOT","is_bot":true}],"event":` + ev + `}`
}

func msgEvent(channel, channelType, ts, text string) string {
	return fmt.Sprintf(`{"type":"message","channel":%q,"channel_type":%q,"user":"U1","text":%q,"ts":%q,"event_ts":%q}`,
		channel, channelType, text, ts, ts)
}

func TestEventsVerification(t *testing.T) {
	body := callback("Ev1", msgEvent("D1", "im", "1700000000.000100", "hello"))
	cases := []struct {
		name   string
		ts     int64
		hdr    []string
		code   int
		reason channels.Reason
	}{
		{"forged", testNow, []string{hdrSignature, "v0=" + strings.Repeat("0", 64)}, 401, channels.ReasonSignature},
		{"wrong secret", testNow, []string{hdrSignature, Sign("other", strconv.Itoa(testNow), []byte(body))}, 401, channels.ReasonSignature},
		{"missing signature", testNow, []string{hdrSignature, ""}, 401, channels.ReasonSignature},
		{"missing timestamp", testNow, []string{hdrTimestamp, ""}, 401, channels.ReasonSignature},
		{"bad timestamp", testNow, []string{hdrTimestamp, "yesterday"}, 401, channels.ReasonSignature},
		{"stale", testNow - 301, nil, 401, channels.ReasonStale},
		{"future", testNow + 301, nil, 401, channels.ReasonStale},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, sink := newEventsAdapter(t, nil)
			rec := post(t, a, body, c.ts, c.hdr...)
			if rec.Code != c.code {
				t.Fatalf("code %d, want %d", rec.Code, c.code)
			}
			if n := sink.Rejections(c.reason); n != 1 {
				t.Fatalf("%s rejections = %d", c.reason, n)
			}
			if n := len(sink.Messages()); n != 0 {
				t.Fatalf("%d messages delivered", n)
			}
		})
	}

	t.Run("valid then replayed", func(t *testing.T) {
		a, sink := newEventsAdapter(t, nil)
		if rec := post(t, a, body, testNow-300); rec.Code != 200 {
			t.Fatalf("valid: %d %s", rec.Code, rec.Body)
		}
		if rec := post(t, a, body, testNow-300); rec.Code != 401 {
			t.Fatalf("replay: %d", rec.Code)
		}
		if sink.Rejections(channels.ReasonReplay) != 1 || len(sink.Messages()) != 1 {
			t.Fatalf("replay rejects %d, messages %d", sink.Rejections(channels.ReasonReplay), len(sink.Messages()))
		}
	})
}

func TestURLVerification(t *testing.T) {
	a, sink := newEventsAdapter(t, nil)
	rec := post(t, a, `{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`, testNow)
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}` {
		t.Fatalf("%d %q", rec.Code, rec.Body)
	}
	if len(sink.Messages()) != 0 {
		t.Fatal("url_verification delivered a message")
	}
}

func TestMessageAndMentionCollapse(t *testing.T) {
	text := "<@UBOT> where is my order?"
	ts := "1700000000.000200"
	msg := callback("EvMsg", msgEvent("C1", "channel", ts, text))
	mention := callback("EvMention", `{"type":"app_mention","channel":"C1","user":"U1","text":"<@UBOT> where is my order?","ts":"`+ts+`","event_ts":"`+ts+`"}`)
	for _, order := range [][]string{{msg, mention}, {mention, msg}} {
		a, sink := newEventsAdapter(t, nil)
		for i, b := range order {
			if rec := post(t, a, b, testNow); rec.Code != 200 {
				t.Fatalf("post %d: %d", i, rec.Code)
			}
		}
		ms := sink.Messages()
		if len(ms) != 1 {
			t.Fatalf("%d messages, want 1", len(ms))
		}
		m := ms[0]
		if m.Key() != "C1:"+ts || !m.Mentioned || m.Text != "where is my order?" || m.ConversationType != channels.Channel {
			t.Fatalf("message %+v", m)
		}
	}
}

func TestRetriesDeliverOnce(t *testing.T) {
	a, sink := newEventsAdapter(t, nil)
	body := callback("Ev9", msgEvent("D1", "im", "1700000000.000300", "hi"))
	for i := range 3 {
		hdr := []string{}
		if i > 0 {
			hdr = []string{hdrRetryNum, strconv.Itoa(i), hdrRetryReason, "http_timeout"}
		}
		// Each attempt is signed anew at its own time.
		if rec := post(t, a, body, testNow+int64(i), hdr...); rec.Code != 200 {
			t.Fatalf("attempt %d: %d", i, rec.Code)
		}
	}
	if n := len(sink.Messages()); n != 1 {
		t.Fatalf("%d messages", n)
	}
}

func TestDeliverFailure(t *testing.T) {
	a, sink := newEventsAdapter(t, nil)
	body := callback("Ev10", msgEvent("D1", "im", "1700000000.000400", "hi"))
	sink.Err = errors.New("database busy")
	if rec := post(t, a, body, testNow); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("failing sink: %d", rec.Code)
	}
	sink.Err = nil
	if rec := post(t, a, body, testNow+1, hdrRetryNum, "1", hdrRetryReason, "http_error"); rec.Code != 200 {
		t.Fatalf("retry: %d", rec.Code)
	}
	if n := len(sink.Messages()); n != 1 {
		t.Fatalf("%d messages", n)
	}
	sink.Err = channels.ErrInvalid
	if rec := post(t, a, callback("Ev11", msgEvent("D1", "im", "1700000000.000500", "x")), testNow); rec.Code != http.StatusBadRequest {
		t.Fatalf("invalid: %d", rec.Code)
	}
}

func TestIgnored(t *testing.T) {
	cases := map[string]string{
		"bot_id":          `{"type":"message","channel":"C1","channel_type":"channel","user":"U2","bot_id":"B1","text":"hi","ts":"1.1"}`,
		"bot_message":     `{"type":"message","subtype":"bot_message","channel":"C1","channel_type":"channel","text":"hi","ts":"1.2"}`,
		"own user":        `{"type":"message","channel":"C1","channel_type":"channel","user":"UBOT","text":"hi","ts":"1.3"}`,
		"message_changed": `{"type":"message","subtype":"message_changed","channel":"C1","channel_type":"channel","message":{"user":"U1","text":"x","ts":"1.4"},"ts":"1.5"}`,
		"message_deleted": `{"type":"message","subtype":"message_deleted","channel":"C1","channel_type":"channel","deleted_ts":"1.4","ts":"1.6"}`,
		"channel_join":    `{"type":"message","subtype":"channel_join","channel":"C1","channel_type":"channel","user":"U1","text":"joined","ts":"1.7"}`,
		"reaction_added":  `{"type":"reaction_added","user":"U1","reaction":"thumbsup","item":{"type":"message","channel":"C1","ts":"1.1"},"event_ts":"1.8"}`,
		"unknown":         `{"type":"some_future_event","whatever":[1,2,3]}`,
	}
	for name, ev := range cases {
		t.Run(name, func(t *testing.T) {
			a, sink := newEventsAdapter(t, nil)
			if rec := post(t, a, callback("Ev-"+name, ev), testNow); rec.Code != 200 {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			if len(sink.Messages()) != 0 || sink.Rejections(channels.ReasonMalformed) != 0 {
				t.Fatalf("delivered %d, malformed %d", len(sink.Messages()), sink.Rejections(channels.ReasonMalformed))
			}
		})
	}
	t.Run("unknown callback type", func(t *testing.T) {
		a, sink := newEventsAdapter(t, nil)
		if rec := post(t, a, `{"type":"app_rate_limited","team_id":"T1","minute_rate_limited":1518467820}`, testNow); rec.Code != 200 {
			t.Fatalf("%d", rec.Code)
		}
		if len(sink.Messages()) != 0 {
			t.Fatal("delivered")
		}
	})
	t.Run("own user from authorizations", func(t *testing.T) {
		a, sink := newEventsAdapter(t, func(c *Config) { c.BotUserID = "" })
		// Start asked auth.test at an unreachable API; the callback's
		// authorizations name the bot.
		if a.State().LastError == "" {
			t.Fatal("auth.test failure not in state")
		}
		if rec := post(t, a, callback("EvOwn", cases["own user"]), testNow); rec.Code != 200 || len(sink.Messages()) != 0 {
			t.Fatalf("%d, %d messages", rec.Code, len(sink.Messages()))
		}
		if rec := post(t, a, callback("EvM", msgEvent("C1", "channel", "1.9", "hi <@UBOT>")), testNow); rec.Code != 200 {
			t.Fatalf("%d", rec.Code)
		}
		if ms := sink.Messages(); len(ms) != 1 || !ms[0].Mentioned || ms[0].Text != "hi" {
			t.Fatalf("%+v", ms)
		}
	})
}

func TestRefusedBodies(t *testing.T) {
	t.Run("oversize", func(t *testing.T) {
		a, sink := newEventsAdapter(t, func(c *Config) { c.MaxBody = 64 })
		rec := post(t, a, callback("Ev", msgEvent("D1", "im", "1.1", strings.Repeat("x", 100))), testNow)
		if rec.Code != http.StatusRequestEntityTooLarge || sink.Rejections(channels.ReasonTooLarge) != 1 || len(sink.Messages()) != 0 {
			t.Fatalf("%d", rec.Code)
		}
	})
	for name, body := range map[string]string{
		"not json":           `{"type":`,
		"no type":            `{"event_id":"x"}`,
		"no event":           `{"type":"event_callback","event_id":"x"}`,
		"event not object":   `{"type":"event_callback","event_id":"x","event":"hello"}`,
		"message without ts": callback("Ev", `{"type":"message","channel":"C1","user":"U1","text":"hi"}`),
		"bad ts":             callback("Ev", `{"type":"message","channel":"C1","user":"U1","text":"hi","ts":"soon"}`),
	} {
		t.Run(name, func(t *testing.T) {
			a, sink := newEventsAdapter(t, nil)
			rec := post(t, a, body, testNow)
			if rec.Code != http.StatusBadRequest || sink.Rejections(channels.ReasonMalformed) != 1 || len(sink.Messages()) != 0 {
				t.Fatalf("%d, malformed %d", rec.Code, sink.Rejections(channels.ReasonMalformed))
			}
		})
	}
}

func TestNotRunning(t *testing.T) {
	a, _ := newEventsAdapter(t, nil)
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal("second Stop:", err)
	}
	if rec := post(t, a, callback("Ev", msgEvent("D1", "im", "1.1", "hi")), testNow); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("after Stop: %d", rec.Code)
	}
}

func TestMessageFields(t *testing.T) {
	a, sink := newEventsAdapter(t, nil)
	ev := `{"type":"message","subtype":"file_share","channel":"D024BE91L","channel_type":"im","user":"U2147483697",
		"user_profile":{"display_name":"","real_name":"Ana Lima","name":"ana"},
		"text":"<@UBOT> see <@U0G9QF9C6|bob> &amp; <#C024BE7LR|general>: <https://x.test/a?b=1&amp;c=2|the order> &lt;3",
		"ts":"1355517523.000005","thread_ts":"1355517500.000001","team":"T1",
		"files":[
			{"id":"F1","name":"photo.png","mimetype":"image/png","filetype":"png","size":1234,"url_private":"https://files.slack.com/F1/photo.png"},
			{"id":"F2","name":"audio_message.webm","mimetype":"audio/webm","filetype":"webm","subtype":"slack_audio","size":4321,"duration_ms":5300,"url_private":"https://files.slack.com/F2/a.webm"},
			{"id":"F3","name":"song.mp3","mimetype":"audio/mpeg","filetype":"mp3","size":99,"url_private":"https://files.slack.com/F3/s.mp3"},
			{"id":"F4","mode":"tombstone"}
		]}`
	body := callback("Ev1", ev)
	if rec := post(t, a, body, testNow); rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	ms := sink.Messages()
	if len(ms) != 1 {
		t.Fatalf("%d messages", len(ms))
	}
	m := ms[0]
	want := channels.Message{
		Channel: "slack", Platform: "slack", Bot: "T1",
		ID: "D024BE91L:1355517523.000005", DedupKey: "D024BE91L:1355517523.000005",
		Conversation: "D024BE91L", ConversationType: channels.Direct,
		Thread:   "1355517500.000001",
		Sender:   channels.Sender{ID: "U2147483697", Name: "Ana Lima"},
		Mentions: []string{"UBOT", "U0G9QF9C6"}, Mentioned: true,
		Time: time.Unix(1355517523, 5000).UTC(),
		Text: "see @bob & #general: the order (https://x.test/a?b=1&c=2) <3",
	}
	if m.Channel != want.Channel || m.Platform != want.Platform || m.Bot != want.Bot || m.ID != want.ID ||
		m.DedupKey != want.DedupKey || m.Conversation != want.Conversation || m.ConversationType != want.ConversationType ||
		m.Thread != want.Thread || m.Sender != want.Sender || fmt.Sprint(m.Mentions) != fmt.Sprint(want.Mentions) ||
		m.Mentioned != want.Mentioned || !m.Time.Equal(want.Time) || m.Time.Location() != time.UTC || m.Text != want.Text {
		t.Fatalf("got  %+v\nwant %+v", *m, want)
	}
	if string(m.Raw) != body {
		t.Fatal("Raw is not the callback body")
	}
	wantMedia := []channels.Media{
		{Kind: channels.Image, Key: "F1", URL: "https://files.slack.com/F1/photo.png", MIME: "image/png", Size: 1234, Name: "photo.png"},
		{Kind: channels.Voice, Key: "F2", URL: "https://files.slack.com/F2/a.webm", MIME: "audio/webm", Size: 4321, Name: "audio_message.webm", Duration: 5300 * time.Millisecond},
		{Kind: channels.File, Key: "F3", URL: "https://files.slack.com/F3/s.mp3", MIME: "audio/mpeg", Size: 99, Name: "song.mp3"},
	}
	if fmt.Sprint(m.Media) != fmt.Sprint(wantMedia) {
		t.Fatalf("media\n got %+v\nwant %+v", m.Media, wantMedia)
	}
}

func TestConversationType(t *testing.T) {
	cases := []struct {
		typ, ch string
		want    channels.ConversationType
	}{
		{"im", "D1", channels.Direct},
		{"mpim", "G1", channels.Group},
		{"channel", "C1", channels.Channel},
		{"group", "G2", channels.Channel},
		{"", "D9", channels.Direct}, // app_mention has no channel_type
		{"", "C9", channels.Channel},
	}
	for _, c := range cases {
		if got := conversationType(c.typ, c.ch); got != c.want {
			t.Errorf("%q %q: %s, want %s", c.typ, c.ch, got, c.want)
		}
	}
}

func TestPlainText(t *testing.T) {
	cases := []struct {
		in, want string
		mentions []string
	}{
		{"<@UBOT> hi", "hi", []string{"UBOT"}},
		{"hi <@UBOT> there", "hi there", []string{"UBOT"}},
		{"<@UBOT|zhiyin>: help", ": help", []string{"UBOT"}},
		{"ask <@U1> and <@W2|carol> and <@U1>", "ask @U1 and @carol and @U1", []string{"U1", "W2"}},
		{"<!here> <!subteam^S1|@ops> <!date^1392734382^{date}|Feb 18, 2014>", "@here @ops Feb 18, 2014", nil},
		{"mail <mailto:a@b.c|a@b.c> or <https://x.y>", "mail a@b.c or https://x.y", nil},
		{"1 &lt; 2 &amp;&amp; 3 &gt; 2", "1 < 2 && 3 > 2", nil},
		{"unclosed <@U1 tag", "unclosed <@U1 tag", nil},
		{"  ", "", nil},
	}
	for _, c := range cases {
		got, mentions := plainText(c.in, testBotUser)
		if got != c.want || fmt.Sprint(mentions) != fmt.Sprint(c.mentions) {
			t.Errorf("plainText(%q) = %q %v, want %q %v", c.in, got, mentions, c.want, c.mentions)
		}
	}
}

func TestParseTS(t *testing.T) {
	for in, want := range map[string]time.Time{
		"1531420618.000200": time.Unix(1531420618, 200000),
		"1531420618":        time.Unix(1531420618, 0),
		"1531420618.5":      time.Unix(1531420618, 500000000),
	} {
		got, err := parseTS(in)
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("parseTS(%q) = %v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "x", "1.x", "-1.0", "1.-5", "1.0000000000", "1.+5", "+1.5", "1."} {
		if _, err := parseTS(in); err == nil {
			t.Errorf("parseTS(%q): no error", in)
		}
	}
}
