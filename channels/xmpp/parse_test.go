package xmpp

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CST", 8*3600))

func fixedNow() time.Time { return testNow }

func clientEnv() *env {
	return &env{
		channel: Name, mode: ModeClient, self: "bot@localhost", now: fixedNow,
		rooms: map[string]*room{"support@conference.localhost": {jid: "support@conference.localhost", nick: "知音"}},
	}
}

func parseOne(t *testing.T, stanza string, e *env) (*channels.Message, bool) {
	t.Helper()
	els, _ := readAll(testHeader+stanza, 1<<16)
	if len(els) != 1 {
		t.Fatalf("stanza does not parse: %s", stanza)
	}
	return parseMessage(els[0], e)
}

func TestParseChat(t *testing.T) {
	m, ok := parseOne(t, `<message from='user@localhost/phone' to='bot@localhost/zhiyin' type='chat' id='m1'><body> 你好 </body><nick xmlns='http://jabber.org/protocol/nick'>小王</nick><thread>t1</thread></message>`, clientEnv())
	if !ok {
		t.Fatal("not delivered")
	}
	want := channels.Message{
		Channel: "xmpp", Platform: "xmpp", Bot: "bot@localhost", ID: "m1", DedupKey: "id:user@localhost/phone:m1",
		Conversation: "user@localhost", ConversationType: channels.Direct, Thread: "t1",
		Sender: channels.Sender{ID: "user@localhost", Name: "小王"}, Time: testNow.UTC(), Text: "你好",
	}
	var raw string
	if err := json.Unmarshal(m.Raw, &raw); err != nil || !strings.HasPrefix(raw, `<message xmlns="jabber:client"`) {
		t.Fatalf("raw = %s (%v)", m.Raw, err)
	}
	m.Raw = nil
	if got, w := mustJSON(m), mustJSON(&want); got != w {
		t.Fatalf("got  %s\nwant %s", got, w)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestParseGroupchat(t *testing.T) {
	m, ok := parseOne(t, `<message from='support@conference.localhost/小王' type='groupchat' id='g1'><body>知音: 查订单</body>`+
		`<stanza-id xmlns='urn:xmpp:sid:0' by='support@conference.localhost' id='arch-1'/>`+
		`<stanza-id xmlns='urn:xmpp:sid:0' by='forged@evil' id='x'/></message>`, clientEnv())
	if !ok {
		t.Fatal("not delivered")
	}
	if m.ConversationType != channels.Group || m.Conversation != "support@conference.localhost" ||
		m.Sender.ID != "support@conference.localhost/小王" || m.Sender.Name != "小王" ||
		!m.Mentioned || m.Text != "查订单" || m.ID != "g1" || m.DedupKey != "sid:support@conference.localhost:arch-1" ||
		len(m.Mentions) != 1 || m.Mentions[0] != "support@conference.localhost/知音" {
		t.Fatalf("got %+v", m)
	}
	m, ok = parseOne(t, `<message from='support@conference.localhost/小王' type='groupchat' id='g2'><body>大家好</body></message>`, clientEnv())
	if !ok || m.Mentioned || m.Text != "大家好" {
		t.Fatalf("unmentioned: %v %+v", ok, m)
	}
}

func TestParseIgnored(t *testing.T) {
	for name, stanza := range map[string]string{
		"own echo":         `<message from='support@conference.localhost/知音' type='groupchat' id='1'><body>hi</body></message>`,
		"history":          `<message from='support@conference.localhost/u' type='groupchat' id='1'><body>hi</body><delay xmlns='urn:xmpp:delay' stamp='2020-01-01T00:00:00Z'/></message>`,
		"room notice":      `<message from='support@conference.localhost' type='groupchat' id='1'><body>room is not anonymous</body></message>`,
		"no body":          `<message from='user@localhost/r' type='chat' id='1'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`,
		"blank body":       `<message from='user@localhost/r' type='chat' id='1'><body>  </body></message>`,
		"subject":          `<message from='support@conference.localhost/u' type='groupchat'><subject>topic</subject></message>`,
		"error":            `<message from='user@localhost/r' type='error' id='1'><body>hi</body><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`,
		"headline":         `<message from='pubsub.localhost' type='headline'><body>news</body></message>`,
		"own resource":     `<message from='bot@localhost/other' type='chat' id='1'><body>hi</body></message>`,
		"no from":          `<message type='chat' id='1'><body>hi</body></message>`,
		"invite":           `<message from='other@conference.localhost'><body>join</body><x xmlns='http://jabber.org/protocol/muc#user'><invite from='u@localhost'/></x></message>`,
		"bad from":         `<message from='a b@c' type='chat'><body>hi</body></message>`,
		"body other ns":    `<message from='user@localhost/r'><body xmlns='urn:other'>hi</body></message>`,
		"PM from own nick": `<message from='support@conference.localhost/知音' type='chat'><body>hi</body></message>`,
	} {
		t.Run(name, func(t *testing.T) {
			if m, ok := parseOne(t, stanza, clientEnv()); ok {
				t.Fatalf("delivered %+v", m)
			}
		})
	}
}

func TestParseKinds(t *testing.T) {
	e := clientEnv()
	// Offline message: delivered with the delay stamp.
	m, ok := parseOne(t, `<message from='user@localhost/r' id='o1'><body>早</body><delay xmlns='urn:xmpp:delay' from='localhost' stamp='2026-01-01T08:00:00.5+08:00'/></message>`, e)
	if !ok || !m.Time.Equal(time.Date(2026, 1, 1, 0, 0, 0, 5e8, time.UTC)) || m.Time.Location() != time.UTC {
		t.Fatalf("offline: %v %+v", ok, m)
	}
	// Unknown type is normal; MUC private message answers the occupant.
	m, ok = parseOne(t, `<message from='support@conference.localhost/小李' type='weird'><body>私聊</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>`, e)
	if !ok || m.ConversationType != channels.Direct || m.Conversation != "support@conference.localhost/小李" || m.Sender.Name != "小李" {
		t.Fatalf("PM: %v %+v", ok, m)
	}
	// Media.
	m, ok = parseOne(t, `<message from='user@localhost/r' id='f'><body>https://up.localhost/a/%E5%9B%BE.JPG</body><x xmlns='jabber:x:oob'><url>https://up.localhost/a/%E5%9B%BE.JPG</url></x>`+
		`<x xmlns='jabber:x:oob'><url>https://up.localhost/voice.m4a</url></x><x xmlns='jabber:x:oob'><url>https://up.localhost/report</url></x><x xmlns='jabber:x:oob'><url>file:///etc/passwd</url></x></message>`, e)
	if !ok || m.Text != "" || len(m.Media) != 3 {
		t.Fatalf("media: %v %+v", ok, m)
	}
	if md := m.Media[0]; md.Kind != channels.Image || md.MIME != "image/jpeg" || md.Name != "图.JPG" || md.URL != "https://up.localhost/a/%E5%9B%BE.JPG" {
		t.Fatalf("image: %+v", md)
	}
	if m.Media[1].Kind != channels.Voice || m.Media[2].Kind != channels.File || m.Media[2].Name != "report" {
		t.Fatalf("media kinds: %+v", m.Media)
	}
}

func TestParseComponent(t *testing.T) {
	e := &env{channel: Name, mode: ModeComponent, self: "bot.localhost", now: fixedNow}
	m, ok := parseOne(t, `<message xmlns='jabber:client' from='user@localhost/r' to='help@bot.localhost' type='chat' id='c1'><body>你好</body></message>`, e)
	if !ok || m.Bot != "help@bot.localhost" || m.Handle.Extra["from"] != "help@bot.localhost" || m.Conversation != "user@localhost" {
		t.Fatalf("component: %v %+v", ok, m)
	}
	if _, ok := parseOne(t, `<message from='echo@bot.localhost' to='help@bot.localhost' type='chat'><body>x</body></message>`, e); ok {
		t.Fatal("message from our own domain delivered")
	}
}

func TestDedupKeys(t *testing.T) {
	e := clientEnv()
	for _, tc := range []struct{ name, stanza, id, key string }{
		{"stanza-id by us", `<message from='u@localhost/r' id='a'><body>x</body><stanza-id xmlns='urn:xmpp:sid:0' by='Bot@localhost' id='S'/><origin-id xmlns='urn:xmpp:sid:0' id='O'/></message>`, "a", "sid:bot@localhost:S"},
		{"stanza-id by someone else", `<message from='u@localhost/r' id='a'><body>x</body><stanza-id xmlns='urn:xmpp:sid:0' by='u@localhost' id='S'/><origin-id xmlns='urn:xmpp:sid:0' id='O'/></message>`, "a", "oid:u@localhost/r:O"},
		{"origin-id", `<message from='u@localhost/r'><body>x</body><origin-id xmlns='urn:xmpp:sid:0' id='O'/></message>`, "O", "oid:u@localhost/r:O"},
		{"id attr", `<message from='u@localhost/r' id='a'><body>x</body></message>`, "a", "id:u@localhost/r:a"},
		{"hash", `<message from='u@localhost/r'><body>x</body></message>`, "h:8a3558a38d9acd7354701193c3b0bcbd", "h:8a3558a38d9acd7354701193c3b0bcbd"},
		{"long", `<message from='u@localhost/r' id='` + strings.Repeat("z", 300) + `'><body>x</body></message>`, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, ok := parseOne(t, tc.stanza, e)
			if !ok {
				t.Fatal("not delivered")
			}
			if tc.key == "" {
				if len(m.ID) > maxKey || len(m.DedupKey) > maxKey || !strings.HasPrefix(m.DedupKey, "id:") {
					t.Fatalf("long: id %q key %q", m.ID, m.DedupKey)
				}
				return
			}
			if m.ID != tc.id || m.DedupKey != tc.key {
				t.Fatalf("id %q key %q, want %q %q", m.ID, m.DedupKey, tc.id, tc.key)
			}
		})
	}
	// The hash is stable: the same stanza twice is one message.
	a, _ := parseOne(t, `<message from='u@localhost/r'><body>x</body></message>`, e)
	b, _ := parseOne(t, `<message from='u@localhost/r'><body>x</body></message>`, e)
	if a.Key() != b.Key() {
		t.Fatal("hash key not stable")
	}
}

func TestStripMention(t *testing.T) {
	for _, tc := range []struct {
		in, text string
		found    bool
	}{
		{"知音: 查订单", "查订单", true},
		{"知音：查订单", "查订单", true},
		{"知音，查订单", "查订单", true},
		{"@知音 你好", "你好", true},
		{"  知音 你好", "你好", true},
		{"请问 @知音 订单在哪", "请问 订单在哪", true},
		{"知音你好", "你好", true},
		{"我喜欢知音的服务", "我喜欢知音的服务", true},
		{"大家好", "大家好", false},
		{"Bot: hi", "hi", true},
		{"robotics is fun", "robotics is fun", false},
		{"ask bot please", "ask bot please", true},
		{"@bottle", "@bottle", false},
		{"BOT, 帮我", "帮我", true},
	} {
		nicks := []string{"知音"}
		if !strings.ContainsAny(tc.in, "知") {
			nicks = []string{"bot"}
		}
		text, who := stripMention(tc.in, nicks...)
		if text != tc.text || (who != "") != tc.found {
			t.Errorf("stripMention(%q) = %q, %q; want %q, %v", tc.in, text, who, tc.text, tc.found)
		}
	}
}
