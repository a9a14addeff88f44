package wecom

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"strings"
	"testing"
)

// Published WXBizMsgCrypt vectors (PROTOCOLS.md).
const (
	vecToken     = "QDG6eK"
	vecTimestamp = "1409659589"
	vecNonce     = "263014780"
	vecAESKey    = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
	vecEchostr   = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
	vecSignature = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
	vecMsg       = "1616140317555161061"
	vecCorpID    = "wx5823bf96d3bd56c7"
)

func vecCrypto(t testing.TB, receiveID string) *Crypto {
	t.Helper()
	c, err := NewCrypto(vecToken, vecAESKey, receiveID)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPublishedVectors(t *testing.T) {
	c := vecCrypto(t, vecCorpID)
	if got := c.Signature(vecTimestamp, vecNonce, vecEchostr); got != vecSignature {
		t.Errorf("Signature = %s, want %s", got, vecSignature)
	}
	if !c.Verify(vecSignature, vecTimestamp, vecNonce, vecEchostr) || !c.Verify(strings.ToUpper(vecSignature), vecTimestamp, vecNonce, vecEchostr) {
		t.Error("Verify refuses the published signature")
	}
	if c.Verify(vecSignature, vecTimestamp, "263014781", vecEchostr) {
		t.Error("Verify accepts a signature over another nonce")
	}
	msg, rid, err := c.Decrypt(vecEchostr)
	if err != nil {
		t.Fatal(err)
	}
	if string(msg) != vecMsg || rid != vecCorpID {
		t.Errorf("Decrypt = %q, %q; want %q, %q", msg, rid, vecMsg, vecCorpID)
	}
}

func TestRoundTrip(t *testing.T) {
	c := vecCrypto(t, vecCorpID)
	for n := 0; n <= 100; n++ {
		msg := bytes.Repeat([]byte{'a' + byte(n%26)}, n)
		out, err := c.Encrypt(msg, "1700000000", "nonce"+strings.Repeat("x", n%3))
		if err != nil {
			t.Fatal(err)
		}
		var env struct {
			Encrypt, MsgSignature, TimeStamp, Nonce string
		}
		if err := xml.Unmarshal(out, &env); err != nil {
			t.Fatalf("reply XML %s: %v", out, err)
		}
		if !c.Verify(env.MsgSignature, env.TimeStamp, env.Nonce, env.Encrypt) {
			t.Fatalf("n=%d: reply signature does not verify", n)
		}
		got, rid, err := c.Decrypt(env.Encrypt)
		if err != nil || !bytes.Equal(got, msg) || rid != vecCorpID {
			t.Fatalf("n=%d: Decrypt = %q, %q, %v", n, got, rid, err)
		}
	}
}

// sealRaw encrypts pt (already framed and padded, or not) with the vector
// key, to build ciphertexts Encrypt would never produce.
func sealRaw(t *testing.T, pt []byte) string {
	t.Helper()
	key, err := decodeAESKey(vecAESKey)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(key)
	ct := make([]byte, len(pt))
	cipher.NewCBCEncrypter(block, key[:16]).CryptBlocks(ct, pt)
	return base64.StdEncoding.EncodeToString(ct)
}

// frame builds random16 | len | msg | rid (unpadded).
func frame(msg, rid string, declared int) []byte {
	b := make([]byte, headerLen, headerLen+len(msg)+len(rid))
	binary.BigEndian.PutUint32(b[randomLen:], uint32(declared))
	return append(append(b, msg...), rid...)
}

// padTo pads b to a multiple of 32 with PKCS#7 bytes of value v (forged
// when v is not the real count).
func padTo(b []byte, v byte) []byte {
	n := padBlock - len(b)%padBlock
	for range n {
		b = append(b, v)
	}
	return b
}

func TestDecryptErrors(t *testing.T) {
	c := vecCrypto(t, vecCorpID)
	good := frame("hello", vecCorpID, 5)
	pad := func(b []byte) []byte { return padTo(append([]byte(nil), b...), byte(padBlock-len(b)%padBlock)) }
	zeroPad := append(pad(good)[:len(pad(good))-1], 0)
	pad33 := append(pad(good)[:len(pad(good))-1], 33)
	mixedPad := pad(good)
	mixedPad[len(mixedPad)-2] ^= 0xff
	tests := []struct {
		name string
		enc  string
		want error
	}{
		{"ok", sealRaw(t, pad(good)), nil},
		{"pad 0", sealRaw(t, zeroPad), ErrDecrypt},
		{"pad 33", sealRaw(t, pad33), ErrDecrypt},
		{"inconsistent pad", sealRaw(t, mixedPad), ErrDecrypt},
		{"not base64", "!!!", ErrDecrypt},
		{"empty", "", ErrDecrypt},
		{"not whole blocks", base64.StdEncoding.EncodeToString(make([]byte, 20)), ErrDecrypt},
		{"short plaintext", sealRaw(t, padTo(make([]byte, 16), 16)), ErrDecrypt},
		{"length past end", sealRaw(t, pad(frame("hello", vecCorpID, 1000))), ErrDecrypt},
		{"wrong receive id", sealRaw(t, pad(frame("hello", "wwother", 5))), ErrReceiveID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, _, err := c.Decrypt(tt.enc)
			if !errors.Is(err, tt.want) || (tt.want == nil && string(msg) != "hello") {
				t.Errorf("Decrypt = %q, %v; want error %v", msg, err, tt.want)
			}
		})
	}
	// Without a configured receive id any is accepted.
	if _, rid, err := vecCrypto(t, "").Decrypt(sealRaw(t, pad(frame("hello", "wwother", 5)))); err != nil || rid != "wwother" {
		t.Errorf("no receive id check: %q, %v", rid, err)
	}
}

func TestNewCryptoKey(t *testing.T) {
	for _, k := range []string{"", "short", vecAESKey + "A", strings.Repeat("!", 43)} {
		if _, err := NewCrypto("t", k, ""); !errors.Is(err, ErrKey) {
			t.Errorf("NewCrypto(key %q) = %v, want ErrKey", k, err)
		}
	}
}
