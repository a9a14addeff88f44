package matrix

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzSync(f *testing.F) {
	for _, s := range []string{
		`{"next_batch":"s10","rooms":{"join":{"!r:x":{"summary":{"m.joined_member_count":2},"state":{"events":[{"type":"m.room.member","state_key":"@a:x","sender":"@a:x","content":{"membership":"join","displayname":"A"}}]},"timeline":{"limited":true,"prev_batch":"s5","events":[` +
			`{"type":"m.room.message","event_id":"$1","sender":"@a:x","origin_server_ts":1700000000000,"content":{"msgtype":"m.text","body":"> <@bot:x> q\n\nbot: hi","m.relates_to":{"m.in_reply_to":{"event_id":"$0"}},"m.mentions":{"user_ids":["@bot:x"]}}},` +
			`{"type":"m.room.message","event_id":"$2","sender":"@a:x","content":{"msgtype":"m.audio","body":"v.ogg","url":"mxc://x/y","info":{"duration":"1200","size":1.5e3,"mimetype":"audio/ogg"}}},` +
			`{"type":"m.room.message","event_id":"$3","sender":"@a:x","content":{"msgtype":"m.text","body":"t","m.relates_to":{"rel_type":"m.thread","event_id":"$1","is_falling_back":true,"m.in_reply_to":{"event_id":"$2"}}}},` +
			`{"type":"m.room.member","event_id":"$4","sender":"@bot:x","state_key":"@bot:x","content":{"membership":"join"}}]}}},` +
			`"invite":{"!i:x":{"invite_state":{"events":[]}}}}}`,
		`{"next_batch":"s1"}`,
		`{"next_batch":"s2","rooms":{"join":{"!r:x":{"timeline":{"events":[{"type":"m.room.message","content":{"body":5}},null,1,"x"]}}}}}`,
		`{"next_batch":""}`, `[]`, `{"next_batch":"s3","rooms":{"join":[]}}`, ``,
	} {
		f.Add([]byte(s))
	}
	me := identity{UserID: "@bot:x", DisplayName: "Bot"}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseSync(b)
		if err != nil {
			return
		}
		if r.NextBatch == "" {
			t.Fatal("accepted an answer without next_batch")
		}
		rs := &rooms{members: map[string]int{}, names: map[string]string{}}
		for id, room := range r.Rooms.Join {
			rs.learn(id, &room)
			rs.learnMembers(id, room.Timeline.Events)
			for _, raw := range afterOwnJoin(room.Timeline.Events, me.UserID) {
				m, err := toMessage(raw, roomInfo{ID: id, Direct: rs.members[id] <= 2}, me)
				if err != nil || m == nil {
					continue
				}
				if m.ID == "" || m.Sender.ID == "" || m.Sender.ID == me.UserID || m.Conversation != id {
					t.Fatalf("bad message %+v", m)
				}
				if m.Text != strings.TrimSpace(m.Text) {
					t.Fatalf("text not trimmed: %q", m.Text)
				}
				for _, md := range m.Media {
					if md.Size < 0 || md.Duration < 0 {
						t.Fatalf("bad media %+v", md)
					}
				}
			}
		}
	})
}

func FuzzBody(f *testing.F) {
	for _, s := range []string{
		"> <@a:x> hi\n> more\n\nreply",
		"> <@a:x> hi",
		"Bot: hello",
		"@bot:x: hello",
		"bot, 你好",
		">\n>\n\n",
		"",
	} {
		f.Add(s, "Bot")
	}
	f.Fuzz(func(t *testing.T, body, name string) {
		me := identity{UserID: "@bot:x", DisplayName: name}
		r := stripReplyFallback(body)
		if len(r) > len(body) || !strings.HasSuffix(body, r) {
			t.Fatalf("stripReplyFallback(%q) = %q: not a suffix", body, r)
		}
		s, ok := stripMentionPrefix(r, me)
		if len(s) > len(r) || (!ok && s != r) {
			t.Fatalf("stripMentionPrefix(%q) = %q, %v", r, s, ok)
		}
		if utf8.ValidString(body) && utf8.ValidString(name) && !utf8.ValidString(s) {
			// A case-insensitive prefix match of a valid name cannot end
			// inside a rune of a valid body.
			t.Fatalf("invalid UTF-8 from %q / %q: %q", body, name, s)
		}
		h := markdownHTML(body)
		if strings.Contains(strings.NewReplacer("<strong>", "", "</strong>", "", "<br>", "").Replace(h), "<") {
			t.Fatalf("markdownHTML(%q) = %q: unescaped markup", body, h)
		}
	})
}
