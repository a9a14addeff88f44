package dingtalk

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/config"
)

// Computed independently of this package:
//
//	printf '%s\n%s' 1700000000000 this-is-a-test-app-secret |
//	  openssl dgst -sha256 -hmac this-is-a-test-app-secret -binary | base64
const (
	vectorTimestamp = "1700000000000"
	vectorSecret    = "this-is-a-test-app-secret"
	vectorSign      = "pMLwTgx7Mtbr7a2K4h6rvtIzeipp2QM/w6gl4icO4P8="
)

func TestSignVector(t *testing.T) {
	if got := Sign(vectorTimestamp, vectorSecret); got != vectorSign {
		t.Fatalf("Sign = %s, want %s", got, vectorSign)
	}
	now := time.UnixMilli(1700000000000 + 30*60*1000)
	for _, tc := range []struct {
		ts, sign string
		now      time.Time
		want     channels.Reason
	}{
		{vectorTimestamp, vectorSign, now, ""},
		{vectorTimestamp, vectorSign, time.UnixMilli(1700000000000 + 61*60*1000), channels.ReasonStale},
		{vectorTimestamp, vectorSign, time.UnixMilli(1700000000000 - 61*60*1000), channels.ReasonStale},
		{vectorTimestamp, strings.ToLower(vectorSign), now, channels.ReasonSignature},
		{vectorTimestamp, "", now, channels.ReasonSignature},
		{"", vectorSign, now, channels.ReasonSignature},
		{"17e11", vectorSign, now, channels.ReasonSignature},
		{"1700000000001", vectorSign, now, channels.ReasonSignature},
	} {
		if got := verifySign(tc.ts, tc.sign, vectorSecret, tc.now); got != tc.want {
			t.Errorf("verifySign(%q, %q) = %q, want %q", tc.ts, tc.sign, got, tc.want)
		}
	}
}

func TestParseBotMessage(t *testing.T) {
	now := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	base := func(msgtype string, extra map[string]any) []byte {
		m := map[string]any{
			"msgId": "msgX", "conversationId": "cidX", "conversationType": "2", "msgtype": msgtype,
			"senderId": "$:sender", "senderStaffId": "staff-9", "senderNick": "李四", "chatbotUserId": "$:bot",
			"robotCode": "robotX", "createAt": 1700000000123, "isInAtList": true,
			"atUsers":                   []map[string]string{{"dingtalkId": "$:bot"}, {"dingtalkId": "$:other", "staffId": "s2"}},
			"sessionWebhook":            "https://oapi.dingtalk.com/robot/sendBySession?session=abc",
			"sessionWebhookExpiredTime": 1700005400123,
		}
		for k, v := range extra {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return b
	}
	t.Run("text", func(t *testing.T) {
		m, err := parseBotMessage(base("text", map[string]any{"text": map[string]string{"content": " @王五\u2005 查一下订单 "}}), now)
		if err != nil {
			t.Fatal(err)
		}
		want := channels.Message{
			Channel: "dingtalk", Platform: "dingtalk", Bot: "robotX", ID: "msgX", DedupKey: "msgX",
			Conversation: "cidX", ConversationType: channels.Group,
			Sender:   channels.Sender{ID: "staff-9", Name: "李四"},
			Mentions: []string{"$:bot", "$:other"}, Mentioned: true,
			Time: time.UnixMilli(1700000000123).UTC(), Text: "查一下订单",
			Handle: channels.Handle{
				URL:     "https://oapi.dingtalk.com/robot/sendBySession?session=abc",
				Expires: time.UnixMilli(1700005400123).UTC(),
				Extra:   map[string]string{"robot_code": "robotX", "conversation_type": "2", "sender_staff_id": "staff-9"},
			},
		}
		m.Raw = nil
		if g, w := mustJSON(m), mustJSON(&want); g != w {
			t.Errorf("got  %s\nwant %s", g, w)
		}
	})
	t.Run("audio", func(t *testing.T) {
		m, err := parseBotMessage(base("audio", map[string]any{"content": map[string]any{"duration": 4000, "downloadCode": "dl-a", "recognition": "钉钉，让进步发生"}}), now)
		if err != nil {
			t.Fatal(err)
		}
		if m.Text != "" || m.Handle.Extra["recognition"] != "钉钉，让进步发生" || len(m.Media) != 1 ||
			m.Media[0] != (channels.Media{Kind: channels.Voice, Key: "dl-a", Duration: 4 * time.Second}) {
			t.Errorf("%+v", m)
		}
	})
	t.Run("picture", func(t *testing.T) {
		m, err := parseBotMessage(base("picture", map[string]any{"content": map[string]any{"downloadCode": "dl-p", "pictureDownloadCode": "pdl"}}), now)
		if err != nil || len(m.Media) != 1 || m.Media[0] != (channels.Media{Kind: channels.Image, Key: "dl-p"}) {
			t.Errorf("%+v %v", m, err)
		}
	})
	t.Run("richText", func(t *testing.T) {
		rt := map[string]any{"richText": []map[string]any{{"text": "看这张图"}, {"type": "picture", "downloadCode": "dl-1"}, {"text": "谢谢"}}}
		m, err := parseBotMessage(base("richText", map[string]any{"content": rt}), now)
		if err != nil || m.Text != "看这张图\n谢谢" || len(m.Media) != 1 || m.Media[0].Key != "dl-1" {
			t.Errorf("%+v %v", m, err)
		}
	})
	t.Run("file", func(t *testing.T) {
		m, err := parseBotMessage(base("file", map[string]any{"content": map[string]any{"downloadCode": "dl-f", "fileName": "发票.pdf", "spaceId": "1", "fileId": "2"}}), now)
		if err != nil || m.Media[0] != (channels.Media{Kind: channels.File, Key: "dl-f", Name: "发票.pdf"}) {
			t.Errorf("%+v %v", m, err)
		}
	})
	t.Run("video", func(t *testing.T) {
		m, err := parseBotMessage(base("video", map[string]any{"content": `{"duration":"8000","downloadCode":"dl-v","videoType":"mp4"}`}), now)
		if err != nil || m.Media[0] != (channels.Media{Kind: channels.Video, Key: "dl-v", MIME: "video/mp4", Duration: 8 * time.Second}) {
			t.Errorf("%+v %v", m, err)
		}
	})
	t.Run("direct, seconds, no staff id", func(t *testing.T) {
		m, err := parseBotMessage(base("text", map[string]any{"conversationType": "1", "senderStaffId": "", "createAt": 1700000000, "isInAtList": false, "atUsers": nil, "text": map[string]string{"content": "@not-a-mention hi"}}), now)
		if err != nil || m.ConversationType != channels.Direct || m.Sender.ID != "$:sender" || !m.Time.Equal(time.Unix(1700000000, 0)) || m.Text != "@not-a-mention hi" {
			t.Errorf("%+v %v", m, err)
		}
	})
	t.Run("no createAt", func(t *testing.T) {
		m, err := parseBotMessage(base("text", map[string]any{"createAt": nil, "text": map[string]string{"content": "x"}}), now)
		if err != nil || !m.Time.Equal(now) {
			t.Errorf("%+v %v", m, err)
		}
	})
	for name, b := range map[string][]byte{
		"unknown msgtype": base("interactiveCard", nil),
		"own message":     base("text", map[string]any{"senderId": "$:bot"}),
	} {
		if _, err := parseBotMessage(b, now); !errors.Is(err, errIgnore) {
			t.Errorf("%s: err %v, want errIgnore", name, err)
		}
	}
	for name, b := range map[string][]byte{
		"not json":          []byte(`{"msgId"`),
		"no msgId":          base("text", map[string]any{"msgId": ""}),
		"no conversationId": base("text", map[string]any{"conversationId": ""}),
		"bad content":       base("picture", map[string]any{"content": 5}),
		"bad createAt":      base("text", map[string]any{"createAt": "soon"}),
	} {
		if _, err := parseBotMessage(b, now); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestConfigValidate(t *testing.T) {
	check := func(c Config) string {
		v := config.NewValidator("channels.dingtalk")
		c.Validate(v)
		if err := v.Err(); err != nil {
			return err.Error()
		}
		return ""
	}
	d := DefaultConfig()
	if got := check(d); got != "" {
		t.Errorf("disabled default: %s", got)
	}
	d.Enabled = true
	got := check(d)
	for _, want := range []string{"channels.dingtalk.client_id: required", "channels.dingtalk.client_secret: required"} {
		if !strings.Contains(got, want) {
			t.Errorf("enabled default: %q lacks %q", got, want)
		}
	}
	c := DefaultConfig()
	c.Enabled, c.Mode, c.APIBase, c.Timeout = true, "websocket", "ftp://x", 0
	got = check(c)
	for _, want := range []string{"mode: must be", "api_base: must be an http(s) URL", "timeout: must be positive"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	c = DefaultConfig()
	c.Enabled, c.Mode = true, ModeCustomRobot
	if got := check(c); !strings.Contains(got, "custom_robot.access_token: required") {
		t.Errorf("custom_robot: %q", got)
	}
	c.CustomRobot.AccessToken = config.NewSecret("t")
	if got := check(c); got != "" {
		t.Errorf("custom_robot with token: %q", got)
	}
}

func TestConfigDecode(t *testing.T) {
	type root struct {
		Channels struct {
			DingTalk Config `yaml:"dingtalk"`
		} `yaml:"channels"`
	}
	var r root
	r.Channels.DingTalk = DefaultConfig()
	yml := `
channels:
  dingtalk:
    enabled: true
    groups: mention
    mode: http
    client_id: dingabc
    client_secret: ${DT_SECRET}
    robot_code: dingabc
    api_base: https://dingtalk.intranet.example/
    custom_robot:
      access_token: tok
      secret_file: /run/secret
    max_body: 512KiB
    timeout: 5s
`
	err := config.Decode("zhiyin.yaml", []byte(yml), &r, config.DecodeOptions{
		LookupEnv: func(k string) (string, bool) { return "s3cret", k == "DT_SECRET" },
		ReadFile:  func(string) ([]byte, error) { return []byte("SECfile\n"), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	c := r.Channels.DingTalk
	if c.Mode != ModeHTTP || c.ClientSecret.Value() != "s3cret" || c.CustomRobot.Secret.Value() == "" || c.MaxBody != 512<<10 || c.Timeout != 5*time.Second || c.OAPIBase != DefaultOAPIBase {
		t.Errorf("%+v", c)
	}
	a, err := New(c, nil)
	if err != nil || a.cfg.APIBase != "https://dingtalk.intranet.example" {
		t.Fatalf("New: %v, %+v", err, a)
	}
}
