package feishu

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

func TestParseTextGroupMentioningBot(t *testing.T) {
	body := textEvent("ev1", "om_1", "group", "@_user_1 你好 @_user_2 ", testBot, "ou_bob")
	p, err := parseEvent(body, testBot, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if p.kind != kindMessage || p.token != testToken {
		t.Fatalf("kind %v token %q", p.kind, p.token)
	}
	m := p.msg
	want := channels.Message{
		Platform: "feishu", Bot: testAppID, ID: "om_1", DedupKey: "ev1",
		Conversation: "oc_chat", ConversationType: channels.Group, ReplyTo: "om_parent",
		Sender:   channels.Sender{ID: "ou_alice"},
		Mentions: []string{testBot, "ou_bob"}, Mentioned: true,
		Time:   time.UnixMilli(1714550399123).UTC(),
		Text:   "你好",
		Handle: channels.Handle{Extra: map[string]string{"tenant_key": "tk1"}},
	}
	if !json.Valid(m.Raw) || !strings.Contains(string(m.Raw), `"event_id":"ev1"`) {
		t.Fatalf("raw %s", m.Raw)
	}
	m.Raw = nil
	if !reflect.DeepEqual(*m, want) {
		t.Fatalf("message\n got %+v\nwant %+v", *m, want)
	}
}

func TestParseMentions(t *testing.T) {
	for _, tc := range []struct {
		name, chatType, bot string
		mentions            []string
		want                bool
	}{
		{"other user mentioned", "group", testBot, []string{"ou_bob"}, false},
		{"bot mentioned", "group", testBot, []string{"ou_bob", testBot}, true},
		{"no bot id, any mention counts", "group", "", []string{"ou_bob"}, true},
		{"no bot id, no mention", "group", "", nil, false},
		{"direct chat", "p2p", "", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseEvent(textEvent("e", "om", tc.chatType, "@_user_1 hi", tc.mentions...), tc.bot, fixedNow)
			if err != nil {
				t.Fatal(err)
			}
			if p.msg.Mentioned != tc.want {
				t.Fatalf("Mentioned = %v, want %v", p.msg.Mentioned, tc.want)
			}
			if p.msg.Text != "hi" {
				t.Fatalf("Text = %q", p.msg.Text)
			}
			wantType := channels.Group
			if tc.chatType == "p2p" {
				wantType = channels.Direct
			}
			if p.msg.ConversationType != wantType {
				t.Fatalf("type %s", p.msg.ConversationType)
			}
		})
	}
}

// withMessage rewrites the message of a text event.
func withMessage(t *testing.T, f func(ev map[string]any, msg map[string]any)) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(textEvent("ev9", "om_9", "p2p", "x"), &ev); err != nil {
		t.Fatal(err)
	}
	f(ev, ev["event"].(map[string]any)["message"].(map[string]any))
	b, _ := json.Marshal(ev)
	return b
}

func TestParseContentKinds(t *testing.T) {
	for _, tc := range []struct {
		name, msgType, content string
		text                   string
		media                  []channels.Media
	}{
		{"image", "image", `{"image_key":"img_1"}`, "", []channels.Media{{Kind: channels.Image, Key: "img_1"}}},
		{"file", "file", `{"file_key":"file_1","file_name":"a.pdf"}`, "", []channels.Media{{Kind: channels.File, Key: "file_1", Name: "a.pdf"}}},
		{"audio", "audio", `{"file_key":"file_2","duration":2500}`, "", []channels.Media{{Kind: channels.Voice, Key: "file_2", Duration: 2500 * time.Millisecond}}},
		{"video", "media", `{"file_key":"file_3","image_key":"img_3","file_name":"v.mp4","duration":1000}`, "", []channels.Media{{Kind: channels.Video, Key: "file_3", Name: "v.mp4", Duration: time.Second}}},
		{"post", "post", `{"title":"标题","content":[[{"tag":"at","user_id":"@_user_1","user_name":"bot"},{"tag":"text","text":" 第一行"}],[{"tag":"a","text":"链接","href":"https://x"},{"tag":"img","image_key":"img_p"}]]}`,
			"标题\n第一行\n链接", []channels.Media{{Kind: channels.Image, Key: "img_p"}}},
		{"post by locale", "post", `{"zh_cn":{"title":"","content":[[{"tag":"text","text":"hi"}]]}}`, "hi", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := withMessage(t, func(_, msg map[string]any) {
				msg["message_type"], msg["content"] = tc.msgType, tc.content
			})
			p, err := parseEvent(body, testBot, fixedNow)
			if err != nil {
				t.Fatal(err)
			}
			if p.kind != kindMessage || p.msg.Text != tc.text || !reflect.DeepEqual(p.msg.Media, tc.media) {
				t.Fatalf("got kind %v text %q media %+v", p.kind, p.msg.Text, p.msg.Media)
			}
		})
	}
}

func TestParseIgnored(t *testing.T) {
	for name, body := range map[string][]byte{
		"sent by an app": withMessage(t, func(ev, _ map[string]any) {
			ev["event"].(map[string]any)["sender"].(map[string]any)["sender_type"] = "app"
		}),
		"sticker": withMessage(t, func(_, msg map[string]any) {
			msg["message_type"], msg["content"] = "sticker", `{"file_key":"s"}`
		}),
		"other v2 event": []byte(`{"schema":"2.0","header":{"event_id":"e","event_type":"im.chat.member.bot.added_v1","token":"t"},"event":{}}`),
		"other v1 event": []byte(`{"uuid":"u","token":"t","type":"event_callback","event":{"type":"app_open"}}`),
	} {
		t.Run(name, func(t *testing.T) {
			p, err := parseEvent(body, testBot, fixedNow)
			if err != nil || p.kind != kindIgnore {
				t.Fatalf("got %+v, %v; want ignored", p, err)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	for name, body := range map[string]string{
		"not json":          `{`,
		"no header fields":  `{"schema":"2.0","header":{}}`,
		"no message id":     `{"schema":"2.0","header":{"event_id":"e","event_type":"im.message.receive_v1"},"event":{"message":{"chat_id":"c"}}}`,
		"bad content":       `{"schema":"2.0","header":{"event_id":"e","event_type":"im.message.receive_v1"},"event":{"message":{"message_id":"m","chat_id":"c","message_type":"text","content":"{"}}}`,
		"event not object":  `{"schema":"2.0","header":{"event_id":"e","event_type":"im.message.receive_v1"},"event":7}`,
		"neither v1 nor v2": `{"type":"event_callback"}`,
		"still encrypted":   `{"encrypt":"abc"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseEvent([]byte(body), testBot, fixedNow); !errors.Is(err, errMalformed) {
				t.Fatalf("err = %v, want malformed", err)
			}
		})
	}
}

func TestParseChallengeAndV1(t *testing.T) {
	p, err := parseEvent([]byte(`{"challenge":"ch1","token":"tok","type":"url_verification"}`), "", fixedNow)
	if err != nil || p.kind != kindChallenge || p.challenge != "ch1" || p.token != "tok" {
		t.Fatalf("challenge: %+v %v", p, err)
	}
	v1 := `{"ts":"1502199207.7171419","uuid":"bc44","token":"tok","type":"event_callback","event":{"type":"message","app_id":"cli_1","tenant_key":"tk","root_id":"","parent_id":"","open_chat_id":"oc_1","chat_type":"private","msg_type":"text","open_id":"ou_1","open_message_id":"om_1","is_mention":false,"text":"<at open_id=\"ou_bot\">@bot</at> hello","text_without_at_bot":" hello"}}`
	p, err = parseEvent([]byte(v1), "", fixedNow)
	if err != nil || p.kind != kindMessage {
		t.Fatalf("v1: %+v %v", p, err)
	}
	m := p.msg
	if m.ID != "om_1" || m.DedupKey != "bc44" || m.Conversation != "oc_1" || m.ConversationType != channels.Direct ||
		m.Sender.ID != "ou_1" || m.Text != "hello" || m.Bot != "cli_1" || !m.Time.Equal(time.UnixMilli(1502199207717).UTC()) {
		t.Fatalf("v1 message %+v", m)
	}
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"1714550399123":      time.UnixMilli(1714550399123).UTC(),
		"1714550399":         time.Unix(1714550399, 0).UTC(),
		"700000000000":       time.UnixMilli(700000000000).UTC(), // ms: as seconds it would not marshal
		"1502199207.7171419": time.UnixMilli(1502199207717).UTC(),
		"":                   {},
		"-5":                 {},
		"abc":                {},
		"99999999999999999":  {},
	} {
		if got := parseTime(in); !got.Equal(want) || (!got.IsZero() && got.Location() != time.UTC) {
			t.Errorf("parseTime(%q) = %v, want %v", in, got, want)
		}
	}
}

func FuzzParseEvent(f *testing.F) {
	f.Add(textEvent("ev1", "om_1", "group", "@_user_1 hi", testBot))
	f.Add([]byte(`{"challenge":"c","token":"t","type":"url_verification"}`))
	f.Add([]byte(`{"ts":"1502199207.7","uuid":"u","event":{"type":"message","open_message_id":"m","open_chat_id":"c","msg_type":"text","text":"<at open_id=\"x\">@x</at> hi"}}`))
	f.Add([]byte(`{"schema":"2.0","header":{"event_id":"e","event_type":"im.message.receive_v1"},"event":{"message":{"message_id":"m","chat_id":"c","message_type":"post","content":"{\"content\":[[{\"tag\":\"img\",\"image_key\":\"k\"}]]}"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseEvent(b, testBot, fixedNow)
		if err != nil {
			return
		}
		if p.kind == kindMessage {
			m := p.msg
			if m.ID == "" || m.Conversation == "" || m.Key() == "" || m.Platform != Platform {
				t.Fatalf("incomplete message %+v", m)
			}
			if _, err := json.Marshal(m); err != nil {
				t.Fatalf("message does not marshal: %v", err)
			}
		}
	})
}
