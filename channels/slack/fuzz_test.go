package slack

import (
	"net/http"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/zhiyin/zhiyin/internal/config"
)

func fuzzAdapter(t testing.TB) *Adapter {
	cfg := DefaultConfig()
	cfg.Enabled = true
	cfg.BotToken = config.NewSecret("xoxb-test")
	cfg.SigningSecret = config.NewSecret(testSecret)
	cfg.BotUserID = testBotUser
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { return time.Unix(testNow, 0) }
	return a
}

// FuzzVerify: a body signed with the secret at a fresh time verifies once;
// any other signature header is refused; nothing panics.
func FuzzVerify(f *testing.F) {
	f.Add("1531420618", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503", []byte("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J"))
	f.Add(strconv.Itoa(testNow), "", []byte(`{"type":"url_verification","challenge":"c"}`))
	f.Add("", "v0=", []byte{})
	f.Add("-9223372036854775808", "v1=00", []byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		a := fuzzAdapter(t)
		h := http.Header{}
		h.Set(hdrTimestamp, ts)
		h.Set(hdrSignature, sig)
		reason, _ := a.verify(h, body)
		good := Sign(testSecret, ts, body)
		if sig != good && reason == "" {
			t.Fatalf("accepted a wrong signature %q for ts %q", sig, ts)
		}
		// The right signature at a fresh time passes once, then is a replay.
		fresh := strconv.Itoa(testNow)
		h.Set(hdrTimestamp, fresh)
		h.Set(hdrSignature, Sign(testSecret, fresh, body))
		a2 := fuzzAdapter(t)
		if r, note := a2.verify(h, body); r != "" {
			t.Fatalf("refused a good signature: %s %s", r, note)
		}
		if r, _ := a2.verify(h, body); r != "replay" {
			t.Fatalf("replay not caught: %q", r)
		}
	})
}

// FuzzParseEvent: callback bodies never panic; a message that comes out
// has an ID, a conversation, UTF-8 text when the input was, and no
// mention of the bot left in Text.
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(callback("Ev1", msgEvent("D1", "im", "1700000000.000100", "<@UBOT> hi"))))
	f.Add([]byte(callback("Ev2", `{"type":"app_mention","channel":"C1","user":"U1","text":"<@UBOT|z> <https://a|b> &amp;","ts":"1.2","thread_ts":"1.1"}`)))
	f.Add([]byte(callback("Ev3", `{"type":"message","subtype":"file_share","channel":"C1","user":"U1","ts":"1.3","files":[{"id":"F1","mimetype":"audio/webm","filetype":"webm","subtype":"slack_audio","duration_ms":1200}]}`)))
	f.Add([]byte(`{"type":"url_verification","challenge":"x"}`))
	f.Add([]byte(`{"type":"event_callback","event":null}`))
	f.Add([]byte(`{"type":"event_callback","event":{"type":"message","channel":"C","user":"U","ts":"99999999999999999999"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		a := fuzzAdapter(t)
		env, err := parseEnvelope(body)
		if err != nil || env.Type != "event_callback" {
			return
		}
		m, err := a.parseEvent(env, body)
		if err != nil || m == nil {
			return
		}
		if m.ID == "" || m.Conversation == "" || m.Key() != m.ID || m.Sender.ID == "" {
			t.Fatalf("incomplete message %+v", m)
		}
		if utf8.Valid(body) && !utf8.ValidString(m.Text) {
			t.Fatalf("text not UTF-8: %q", m.Text)
		}
	})
}

// FuzzSocketEnvelope: Socket Mode frames and their payloads never panic.
func FuzzSocketEnvelope(f *testing.F) {
	f.Add([]byte(helloFrame))
	f.Add([]byte(eventsAPI("e1", callback("Ev1", msgEvent("C1", "channel", "1.1", "hi")), 0)))
	f.Add([]byte(`{"type":"disconnect","reason":"refresh_requested"}`))
	f.Add([]byte(`{"envelope_id":"s","type":"slash_commands","payload":{"command":"/x"}}`))
	f.Add([]byte(`{"type":"events_api","payload":"string"}`))
	f.Fuzz(func(t *testing.T, frame []byte) {
		a := fuzzAdapter(t)
		env, err := parseSocketEnvelope(frame)
		if err != nil {
			return
		}
		if env.Type == "events_api" {
			_, _ = a.parsePayload(env.Payload)
		}
	})
}

// FuzzPlainText: the bot's mention never survives and the text is
// trimmed.
func FuzzPlainText(f *testing.F) {
	for _, s := range []string{"<@UBOT> hi", "a <@U1|x> <#C1> <!here> <http://a|b>", "<<@UBOT>>", "&amp;lt;", "<@UBOT"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, _ := plainText(s, testBotUser)
		if len(got) > 0 && (got[0] == ' ' || got[len(got)-1] == ' ') {
			t.Fatalf("not trimmed: %q", got)
		}
	})
}
