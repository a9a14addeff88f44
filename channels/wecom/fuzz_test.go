package wecom

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels/channelstest"
)

func FuzzDecrypt(f *testing.F) {
	c := vecCrypto(f, vecCorpID)
	f.Add(vecEchostr)
	f.Add("")
	f.Add("AAAAAAAAAAAAAAAAAAAAAA==")
	if enc, err := c.EncryptRaw([]byte("<xml><MsgType>text</MsgType></xml>")); err == nil {
		f.Add(enc)
	}
	f.Fuzz(func(t *testing.T, enc string) {
		msg, _, err := c.Decrypt(enc)
		if err != nil {
			return
		}
		// Whatever decrypts re-encrypts to the same message.
		again, err := c.EncryptRaw(msg)
		if err != nil {
			t.Fatal(err)
		}
		if got, _, err := c.Decrypt(again); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("round trip of %q: %q, %v", msg, got, err)
		}
	})
}

func FuzzVerify(f *testing.F) {
	c := vecCrypto(f, vecCorpID)
	f.Add(vecSignature, vecTimestamp, vecNonce, vecEchostr)
	f.Add("", "", "", "")
	f.Add("zz", "1", "2", "3")
	f.Fuzz(func(t *testing.T, sig, ts, nonce, enc string) {
		want := c.Signature(ts, nonce, enc)
		if len(want) != 40 || !c.Verify(want, ts, nonce, enc) {
			t.Fatalf("Signature %q does not verify", want)
		}
		if ok := c.Verify(sig, ts, nonce, enc); ok != (lowerASCII(sig) == want) {
			t.Fatalf("Verify(%q) = %v, Signature %q", sig, ok, want)
		}
	})
}

func lowerASCII(s string) string { return string(bytes.ToLower([]byte(s))) }

func FuzzParseInbound(f *testing.F) {
	h := &Adapter{cfg: testConfig(DefaultBaseURL)}
	h.cfg = h.cfg.withDefaults()
	f.Add([]byte(textXML("1", "u", "hello")))
	f.Add([]byte(`<xml><MsgType>event</MsgType><Event>enter_agent</Event></xml>`))
	f.Add([]byte(`<xml><MsgType>image</MsgType><PicUrl>x</PicUrl><MediaId>m</MediaId><CreateTime>99999999999999</CreateTime></xml>`))
	f.Add([]byte(`<xml><MsgType>file</MsgType><FileSize>-5</FileSize><ChatId>c</ChatId></xml>`))
	f.Add([]byte(`<xml><MsgType>text`))
	f.Fuzz(func(t *testing.T, plain []byte) {
		in, err := parseInbound(plain)
		if err != nil {
			return
		}
		h.now = fixedNow
		m := h.toMessage(in, plain)
		if m == nil {
			return
		}
		if m.ID == "" || m.Platform != Name || m.Time.Location().String() != "UTC" {
			t.Fatalf("bad message %+v", m)
		}
		for _, md := range m.Media {
			if md.Size < 0 {
				t.Fatalf("negative size %+v", md)
			}
		}
	})
}

func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`<xml><ToUserName><![CDATA[wx]]></ToUserName><Encrypt><![CDATA[abc]]></Encrypt><AgentID>1</AgentID></xml>`))
	f.Add([]byte(`<xml>`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := parseEnvelope(body)
		if err == nil && env.Encrypt == "" {
			t.Fatal("envelope without Encrypt accepted")
		}
	})
}

// FuzzCallback drives the whole POST handler: whatever the body, nothing
// unsigned is delivered and the answer is a refusal.
func FuzzCallback(f *testing.F) {
	cfg := testConfig("http://127.0.0.1:1")
	a, err := New(cfg, nil)
	if err != nil {
		f.Fatal(err)
	}
	a.now = fixedNow
	sink := channelstest.NewSink()
	_ = a.Start(f.Context(), sink)
	f.Add([]byte(`<xml><Encrypt>`+vecEchostr+`</Encrypt></xml>`), "sig", "1700000000", "n")
	f.Add([]byte(`<xml/>`), "", "", "")
	f.Fuzz(func(t *testing.T, body []byte, sig, ts, nonce string) {
		q := url.Values{"msg_signature": {sig}, "timestamp": {ts}, "nonce": {nonce}}
		w := httptest.NewRecorder()
		a.serveCallback(w, httptest.NewRequest(http.MethodPost, CallbackPath+"?"+q.Encode(), bytes.NewReader(body)))
		if w.Code == http.StatusOK || len(sink.Messages()) != 0 {
			t.Fatalf("unsigned request answered %d, %d delivered", w.Code, len(sink.Messages()))
		}
	})
}

func fixedNow() time.Time { return time.Unix(testNow, 0) }
