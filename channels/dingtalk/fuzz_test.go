package dingtalk

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func FuzzParseFrame(f *testing.F) {
	f.Add(frameJSON("CALLBACK", botTopic, "m1", botJSON("msg-1", "2", "hi", "https://oapi.dingtalk.com")))
	f.Add(frameJSON("SYSTEM", "ping", "p1", `{"opaque":"x"}`))
	f.Add([]byte(`{"type":"SYSTEM","headers":{"topic":"disconnect","messageId":5}}`))
	f.Add([]byte(`{"type":"EVENT","headers":null,"data":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := parseFrame(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if fr.Type == "" {
			t.Fatal("frame without type accepted")
		}
		_ = fr.topic()
		// Whatever the frame, the ack must encode.
		if _, err := json.Marshal(newAck(fr.messageID(), fr.Data)); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzParseBotMessage(f *testing.F) {
	f.Add([]byte(botJSON("msg-1", "2", " @张三\u2005你好 ", "https://oapi.dingtalk.com")))
	f.Add([]byte(`{"msgId":"m","conversationId":"c","msgtype":"audio","content":{"duration":"12","downloadCode":"d","recognition":"r"}}`))
	f.Add([]byte(`{"msgId":"m","conversationId":"c","msgtype":"richText","content":"{\"richText\":[{\"text\":\"a\"},{\"downloadCode\":\"x\"}]}"}`))
	f.Add([]byte(`{"msgId":"m","conversationId":"c","msgtype":"video","content":{"duration":1e300}}`))
	f.Add([]byte(`{"msgId":"m","conversationId":"c","createAt":-5,"sessionWebhookExpiredTime":"9223372036854775807"}`))
	now := time.Unix(1700000000, 0)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseBotMessage(b, now)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, errIgnore) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if m.ID == "" || m.Conversation == "" || m.Time.IsZero() {
			t.Fatalf("incomplete message %+v", m)
		}
		if _, err := json.Marshal(m); err != nil {
			t.Fatalf("message does not encode: %v", err)
		}
	})
}

func FuzzVerifySign(f *testing.F) {
	f.Add(vectorTimestamp, vectorSign, vectorSecret, int64(1700000000000))
	f.Add("-1", "", "s", int64(0))
	f.Add("99999999999999999999", "x", "s", int64(1<<62))
	f.Fuzz(func(t *testing.T, ts, sign, secret string, nowMs int64) {
		got := verifySign(ts, sign, secret, time.UnixMilli(nowMs))
		if got == "" && (sign != Sign(ts, secret) || secret == "") {
			t.Fatalf("accepted a wrong sign: ts %q sign %q", ts, sign)
		}
	})
}
