package webhook

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/zhiyin/zhiyin/channels"
)

func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{
		`{"id":"m1","conversation":"c1","user":{"id":"u1"},"text":"hi"}`,
		`{"id":"m-1","conversation":"g-9","conversation_type":"group","user":{"id":"u-7","name":"张三"},"text":" 你好 ","thread":"t","reply_to":"r","mentioned":true,"time":1718000000123,"media":[{"kind":"image","url":"https://x/a.png","mime":"image/png","size":1,"name":"a"}],"callback_url":"https://x/cb"}`,
		`{"id":"1","conversation":"c","user":{"id":"u"},"media":[{"kind":"voice","key":"k"}],"time":"2024-06-10T06:13:20Z"}`,
		`{"id":"1","conversation":"c","user":{"id":"u"},"text":"x","time":1718000000.5}`,
		`{"id":"1","extra":1}`,
		`{"id":"1","conversation":"c","user":{"id":"u"},"text":"x"} []`,
		`[]`, `null`, `{`, ``, `"x"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := parseMessage(body, testNow)
		if err != nil {
			if _, ok := err.(*badRequest); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if m.ID == "" || m.Conversation == "" || m.Sender.ID == "" || len(m.ID) > maxIDLen {
			t.Fatalf("accepted without ids: %+v", m)
		}
		switch m.ConversationType {
		case channels.Direct, channels.Group, channels.Channel:
		default:
			t.Fatalf("conversation type %q", m.ConversationType)
		}
		if m.Text != strings.TrimSpace(m.Text) || (m.Text == "" && len(m.Media) == 0) {
			t.Fatalf("text %q", m.Text)
		}
		if !utf8.ValidString(m.Text) {
			t.Fatalf("invalid UTF-8 text %q", m.Text)
		}
		if m.Time.IsZero() || m.Time.Location() != time.UTC {
			t.Fatalf("time %v", m.Time)
		}
		if string(m.Raw) != string(body) {
			t.Fatal("raw differs from the body")
		}
		for _, md := range m.Media {
			if md.URL == "" && md.Key == "" {
				t.Fatalf("media without a reference: %+v", md)
			}
		}
		if m.Handle.URL != "" && checkURL(m.Handle.URL) != "" {
			t.Fatalf("callback %q", m.Handle.URL)
		}
	})
}

func FuzzVerify(f *testing.F) {
	body := `{"id":"m1","conversation":"c1","user":{"id":"u1"},"text":"hi"}`
	f.Add(nowTS, Sign(testSecret, nowTS, []byte(body)), []byte(body))
	f.Add(nowTS, "sha256="+Sign(testSecret, nowTS, []byte(body)), []byte(body))
	f.Add("1717999000", Sign(testSecret, "1717999000", []byte(body)), []byte(body))
	f.Add("", "", []byte{})
	f.Add("-1", "sha256=", []byte("x"))
	f.Add("99999999999999999999", strings.Repeat("g", 64), []byte("x"))
	a, err := New(testConfig("https://example.com/r"), testLog(f))
	if err != nil {
		f.Fatal(err)
	}
	a.now = func() time.Time { return testNow }
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sig)
		ts, sig = h.Get(HeaderTimestamp), h.Get(HeaderSignature) // as they arrive
		reason, msg := a.verify(h, body)
		if reason == "" {
			want := Sign(testSecret, ts, body)
			if !strings.EqualFold(strings.TrimPrefix(sig, "sha256="), want) {
				t.Fatalf("accepted signature %q for ts %q, want %s", sig, ts, want)
			}
			// The same request again is a replay.
			if r, _ := a.verify(h, body); r != channels.ReasonReplay {
				t.Fatalf("second verify: %q", r)
			}
			return
		}
		if msg == "" {
			t.Fatalf("reason %s without a message", reason)
		}
		// A proper signature of the same timestamp and body passes unless
		// the timestamp is unusable or the signature was seen.
		h.Set(HeaderSignature, Sign(testSecret, ts, body))
		r2, _ := a.verify(h, body)
		switch r2 {
		case "", channels.ReasonStale, channels.ReasonReplay:
		case channels.ReasonSignature:
			if _, err := strconv.ParseInt(ts, 10, 64); err == nil && allDigits(ts) {
				t.Fatalf("properly signed ts %q refused: %q", ts, r2)
			}
		default:
			t.Fatalf("reason %q", r2)
		}
	})
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func FuzzFlexTime(f *testing.F) {
	for _, s := range []string{`1718000000`, `1718000000123`, `1718000000.5`, `"2024-06-10T06:13:20Z"`, `null`, `-1`, `1e99`, `"x"`, `NaN`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var ft flexTime
		if ft.UnmarshalJSON(b) == nil && !ft.IsZero() && ft.Location() != time.UTC {
			t.Fatalf("%s: time %v not UTC", b, ft.Time)
		}
	})
}
