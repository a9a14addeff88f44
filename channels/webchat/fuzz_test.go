package webchat

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fasthttp/websocket"

	"github.com/zhiyin/zhiyin/channels"
)

func FuzzFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"hello","visitor":"visitor-aaaa-0001","name":"张三"}`,
		`{"type":"message","id":"m1","text":"  你好 "}`,
		`{"type":"message","id":"m1","text":"` + strings.Repeat("字", 30) + `"}`,
		`{"type":"ping"}`,
		`{"type":"message","id":"bad id","text":"x"}`,
		`{"type":"hello","visitor":"x","name":"\u0000\u202e"}`,
		`{"type":1}`, `[]`, `null`, `{`, ``, `{"type":"message","extra":{"a":[1,2]}}`,
	} {
		f.Add([]byte(s), true)
	}
	f.Add([]byte{0xff, 0x00}, false)
	now := time.Date(2024, 6, 10, 8, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte, text bool) {
		mt := websocket.BinaryMessage
		if text {
			mt = websocket.TextMessage
		}
		fr, code, msg := parseFrame(mt, data)
		if code != "" {
			if msg == "" {
				t.Fatalf("code %s without a message", code)
			}
			return
		}
		if fr.Type == "" || !text {
			t.Fatalf("accepted %q as %+v", data, fr)
		}
		switch fr.Type {
		case "hello":
			if validID(fr.Visitor, minVisitorLen, maxVisitorLen) {
				n := cleanName(fr.Name)
				if utf8.RuneCountInString(n) > maxNameRunes || n != strings.TrimSpace(n) || !utf8.ValidString(n) {
					t.Fatalf("name %q", n)
				}
				for _, r := range n {
					if r < 0x20 || r == 0x7f {
						t.Fatalf("control character in name %q", n)
					}
				}
			}
		case "message":
			m, code, msg := buildMessage("visitor-aaaa-0001", "n", fr, data, now, 20)
			if code != "" {
				if m != nil || msg == "" {
					t.Fatalf("code %s with message %v", code, m)
				}
				return
			}
			if m.ID != fr.ID || m.DedupKey != "visitor-aaaa-0001:"+fr.ID || m.Conversation != "visitor-aaaa-0001" ||
				m.ConversationType != channels.Direct || m.Text == "" || m.Text != strings.TrimSpace(m.Text) ||
				utf8.RuneCountInString(m.Text) > 20 || !validID(m.ID, 1, maxIDLen) || string(m.Raw) != string(data) {
				t.Fatalf("message %+v", m)
			}
		}
	})
}

func FuzzETagMatch(f *testing.F) {
	for _, s := range []string{`"abc"`, `W/"abc"`, `*`, `"x", "abc"`, ``, `,,`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		got := etagMatch(h, `"abc"`)
		if strings.Contains(h, `"abc"`) == false && !strings.Contains(h, "*") && got {
			t.Fatalf("%q matched", h)
		}
	})
}
