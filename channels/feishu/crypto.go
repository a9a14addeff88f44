package feishu

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
)

// decrypt opens an {"encrypt": …} body: key = SHA256(encryptKey), the
// base64 text is iv (16 bytes) | AES-256-CBC ciphertext, PKCS#7 padded to
// 16-byte blocks. Every padding byte is checked.
func decrypt(encryptKey, b64 string) ([]byte, error) {
	d, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w: base64: %v", errMalformed, err)
	}
	if len(d) < 2*aes.BlockSize || len(d)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("decrypt: %w: %d bytes is not iv + whole blocks", errMalformed, len(d))
	}
	key := sha256.Sum256([]byte(encryptKey))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	out := make([]byte, len(d)-aes.BlockSize)
	cipher.NewCBCDecrypter(block, d[:aes.BlockSize]).CryptBlocks(out, d[aes.BlockSize:])
	n := int(out[len(out)-1])
	if n < 1 || n > aes.BlockSize {
		return nil, fmt.Errorf("decrypt: %w: bad padding", errMalformed)
	}
	bad := 0
	for _, b := range out[len(out)-n:] {
		bad |= int(b) ^ n
	}
	if bad != 0 {
		return nil, fmt.Errorf("decrypt: %w: bad padding", errMalformed)
	}
	return out[:len(out)-n], nil
}

// signature is X-Lark-Signature: hex(SHA256(timestamp + nonce + encryptKey
// + body)).
func signature(timestamp, nonce, encryptKey string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(timestamp))
	h.Write([]byte(nonce))
	h.Write([]byte(encryptKey))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// verifySignature compares sig with the expected signature in constant
// time (hex case-insensitive).
func verifySignature(timestamp, nonce, encryptKey string, body []byte, sig string) bool {
	want := signature(timestamp, nonce, encryptKey, body)
	got := []byte(sig)
	for i, c := range got {
		if 'A' <= c && c <= 'F' {
			got[i] = c + 'a' - 'A'
		}
	}
	return hmac.Equal([]byte(want), got)
}

// equalSecret compares a received token with the configured one in
// constant time.
func equalSecret(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// groupBotSign is a custom group bot's sign: base64(HMAC_SHA256(key =
// timestamp + "\n" + secret, message = "")). Unlike DingTalk the string is
// the key and the message is empty.
func groupBotSign(timestamp int64, secret string) string {
	m := hmac.New(sha256.New, []byte(strconv.FormatInt(timestamp, 10)+"\n"+secret))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
