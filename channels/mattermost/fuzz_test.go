package mattermost

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzEvent(f *testing.F) {
	for _, s := range []string{
		`{"event":"hello","data":{"server_version":"10.5.0","connection_id":"c1"},"broadcast":{"user_id":"bot"},"seq":0}`,
		`{"event":"posted","data":{"channel_type":"O","sender_name":"@bob","mentions":"[\"bot\"]","post":"{\"id\":\"p1\",\"create_at\":1700000000123,\"user_id\":\"bob\",\"channel_id\":\"c\",\"root_id\":\"r\",\"message\":\"@helper hi\",\"type\":\"\",\"file_ids\":[\"f1\"],\"props\":{\"from_bot\":\"false\"},\"metadata\":{\"files\":[{\"id\":\"f1\",\"name\":\"a.png\",\"size\":1,\"mime_type\":\"image/png\"}]}}"},"broadcast":{"channel_id":"c"},"seq":3}`,
		`{"event":"posted","data":{"channel_type":"D","post":{"id":"p2","channel_id":"d","user_id":"u","message":"object form"}},"seq":1}`,
		`{"event":"posted","data":{"post":"{not json"},"seq":2}`,
		`{"event":"posted","data":{"post":"{\"id\":\"s\",\"channel_id\":\"c\",\"type\":\"system_join_channel\"}","mentions":"oops"},"seq":2}`,
		`{"status":"OK","seq_reply":1}`,
		`{"status":"FAIL","seq_reply":1,"error":{"id":"x"}}`,
		`{"event":"typing","data":null,"seq":9}`,
		`[]`, `null`, `"posted"`, ``,
	} {
		f.Add([]byte(s))
	}
	bot := botIdentity{ID: "bot", Username: "helper"}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := parseEvent(b)
		if err != nil {
			return
		}
		m, err := toMessage(ev, bot, b)
		if err != nil || m == nil {
			return
		}
		if m.ID == "" || m.Conversation == "" || m.Sender.ID == bot.ID {
			t.Fatalf("bad message %+v", m)
		}
		if m.Text != strings.TrimSpace(m.Text) {
			t.Fatalf("text not trimmed: %q", m.Text)
		}
		for _, md := range m.Media {
			if md.Key == "" || md.Size < 0 {
				t.Fatalf("bad media %+v", md)
			}
		}
	})
}

func FuzzStripMention(f *testing.F) {
	f.Add("@helper: hi", "helper")
	f.Add("hi @helper.", "helper")
	f.Add("a@helper b @helper, c", "helper")
	f.Add("你好 @helper 在吗", "helper")
	f.Add("@", "")
	f.Fuzz(func(t *testing.T, text, name string) {
		got := stripMention(text, name)
		if len(got) > len(text) {
			t.Fatalf("grew: %q -> %q", text, got)
		}
		if utf8.ValidString(text) && !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8 from %q: %q", text, got)
		}
		if got != strings.TrimSpace(got) {
			t.Fatalf("not trimmed: %q", got)
		}
	})
}
