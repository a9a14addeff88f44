package feishu

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/internal/config"
)

const (
	testEncryptKey = "kudryavka"
	testToken      = "vtoken"
	testAppID      = "cli_test"
	testSecret     = "app-secret"
	testBot        = "ou_bot"
)

// fixedNow is the tests' clock.
var fixedNow = time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)

func testLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testConfig() Config {
	c := DefaultConfig()
	c.Enabled = true
	c.AppID = testAppID
	c.AppSecret = config.NewSecret(testSecret)
	c.EncryptKey = config.NewSecret(testEncryptKey)
	c.VerificationToken = config.NewSecret(testToken)
	c.BotOpenID = testBot
	return c
}

func newTestAdapter(t testing.TB, cfg Config) *Adapter {
	t.Helper()
	a, err := New(cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { return fixedNow }
	return a
}

// encrypt is Feishu's side of decrypt, with a fixed iv.
func encrypt(key string, plain []byte) string {
	k := sha256.Sum256([]byte(key))
	block, _ := aes.NewCipher(k[:])
	n := aes.BlockSize - len(plain)%aes.BlockSize
	padded := append(append([]byte{}, plain...), bytes.Repeat([]byte{byte(n)}, n)...)
	iv := bytes.Repeat([]byte{7}, aes.BlockSize)
	out := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, padded)
	return base64.StdEncoding.EncodeToString(append(iv, out...))
}

// encryptedBody wraps plain as {"encrypt": …}.
func encryptedBody(key string, plain []byte) []byte {
	b, _ := json.Marshal(map[string]string{"encrypt": encrypt(key, plain)})
	return b
}

// textEvent is a v2 im.message.receive_v1 event.
func textEvent(eventID, messageID, chatType, text string, mentions ...string) []byte {
	var ms []map[string]any
	for i, id := range mentions {
		ms = append(ms, map[string]any{
			"key":  "@_user_" + string(rune('1'+i)),
			"id":   map[string]string{"open_id": id, "user_id": "u" + id, "union_id": "on_" + id},
			"name": "name-" + id,
		})
	}
	content, _ := json.Marshal(map[string]string{"text": text})
	ev := map[string]any{
		"schema": "2.0",
		"header": map[string]string{
			"event_id": eventID, "event_type": "im.message.receive_v1", "create_time": "1714550400000",
			"token": testToken, "app_id": testAppID, "tenant_key": "tk1",
		},
		"event": map[string]any{
			"sender": map[string]any{
				"sender_id":   map[string]string{"open_id": "ou_alice", "user_id": "ualice", "union_id": "on_alice"},
				"sender_type": "user", "tenant_key": "tk1",
			},
			"message": map[string]any{
				"message_id": messageID, "root_id": "", "parent_id": "om_parent", "create_time": "1714550399123",
				"chat_id": "oc_chat", "chat_type": chatType, "message_type": "text",
				"content": string(content), "mentions": ms,
			},
		},
	}
	b, _ := json.Marshal(ev)
	return b
}

// encryptRaw encrypts whole blocks without adding padding.
func encryptRaw(key string, plain []byte) string {
	k := sha256.Sum256([]byte(key))
	block, _ := aes.NewCipher(k[:])
	iv := bytes.Repeat([]byte{9}, aes.BlockSize)
	out := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, plain)
	return base64.StdEncoding.EncodeToString(append(iv, out...))
}
