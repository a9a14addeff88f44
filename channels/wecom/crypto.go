package wecom

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
)

// Framing of the WXBizMsgCrypt plaintext:
// random(16) | uint32_be(len(msg)) | msg | receive_id, padded with PKCS#7
// to 32-byte blocks (not AES's 16).
const (
	randomLen = 16
	headerLen = randomLen + 4
	padBlock  = 32
	keyLen    = 32
	aesKeyLen = 43 // base64 characters of an EncodingAESKey, without the "="
)

// Crypto is the WXBizMsgCrypt scheme of WeCom callbacks (and DingTalk's
// event-subscription callbacks): SHA-1 signatures over the sorted token,
// timestamp, nonce and ciphertext; AES-256-CBC with the key from the
// EncodingAESKey and the IV its first 16 bytes. Immutable once built; safe
// for concurrent use.
type Crypto struct {
	token     string
	receiveID string
	block     cipher.Block
	iv        []byte
}

// NewCrypto builds a Crypto from the callback token, the 43-character
// EncodingAESKey and the receive id every decrypted message must carry
// (the WeCom corp id; for DingTalk the suite key or app key). An empty
// receiveID accepts any receive id. It does no I/O.
func NewCrypto(token, encodingAESKey, receiveID string) (*Crypto, error) {
	key, err := decodeAESKey(encodingAESKey)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	return &Crypto{token: token, receiveID: receiveID, block: block, iv: key[:aes.BlockSize]}, nil
}

// decodeAESKey is b64dec(EncodingAESKey + "="), which must be 32 bytes.
func decodeAESKey(s string) ([]byte, error) {
	if len(s) != aesKeyLen {
		return nil, fmt.Errorf("%w: want %d characters, got %d", ErrKey, aesKeyLen, len(s))
	}
	// WeCom's keys are generated with arbitrary trailing bits, so the
	// decoding must not be strict about them (Go's StdEncoding is not).
	key, err := base64.StdEncoding.DecodeString(s + "=")
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", ErrKey)
	}
	if len(key) != keyLen {
		return nil, fmt.Errorf("%w: decodes to %d bytes, want %d", ErrKey, len(key), keyLen)
	}
	return key, nil
}

// Signature returns msg_signature: hex(SHA1(concat(sort([token, timestamp,
// nonce, encrypt])))).
func (c *Crypto) Signature(timestamp, nonce, encrypt string) string {
	parts := []string{c.token, timestamp, nonce, encrypt}
	slices.Sort(parts)
	h := sha1.New()
	for _, p := range parts {
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Verify reports, in constant time, whether signature is the msg_signature
// of timestamp, nonce and encrypt. Hex case is ignored.
func (c *Crypto) Verify(signature, timestamp, nonce, encrypt string) bool {
	want := c.Signature(timestamp, nonce, encrypt)
	got := strings.ToLower(signature)
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// Decrypt opens a base64 ciphertext (an <Encrypt> element or an echostr) and
// returns the message and the receive id it carries. Errors: ErrDecrypt
// (bad base64, not whole blocks, bad padding, inconsistent length),
// ErrReceiveID (a receive id other than the configured one; msg and the
// receive id are still returned for diagnostics).
func (c *Crypto) Decrypt(encrypt string) (msg []byte, receiveID string, err error) {
	ct, err := base64.StdEncoding.DecodeString(encrypt)
	if err != nil {
		return nil, "", fmt.Errorf("%w: not base64", ErrDecrypt)
	}
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, "", fmt.Errorf("%w: %d bytes is not a whole number of AES blocks", ErrDecrypt, len(ct))
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(c.block, c.iv).CryptBlocks(pt, ct)
	pad := int(pt[len(pt)-1])
	if pad < 1 || pad > padBlock || pad > len(pt) {
		return nil, "", fmt.Errorf("%w: bad padding", ErrDecrypt)
	}
	for _, b := range pt[len(pt)-pad:] {
		if int(b) != pad {
			return nil, "", fmt.Errorf("%w: bad padding", ErrDecrypt)
		}
	}
	pt = pt[:len(pt)-pad]
	if len(pt) < headerLen {
		return nil, "", fmt.Errorf("%w: plaintext too short", ErrDecrypt)
	}
	n := binary.BigEndian.Uint32(pt[randomLen:headerLen])
	if uint64(n) > uint64(len(pt)-headerLen) {
		return nil, "", fmt.Errorf("%w: message length %d exceeds the plaintext", ErrDecrypt, n)
	}
	msg = pt[headerLen : headerLen+int(n)]
	receiveID = string(pt[headerLen+int(n):])
	if c.receiveID != "" && subtle.ConstantTimeCompare([]byte(receiveID), []byte(c.receiveID)) != 1 {
		return msg, receiveID, fmt.Errorf("%w: got %q", ErrReceiveID, receiveID)
	}
	return msg, receiveID, nil
}

// EncryptRaw seals msg for the configured receive id and returns the base64
// ciphertext (the <Encrypt> value; DingTalk's JSON "encrypt"). The 16 random
// bytes come from crypto/rand.
func (c *Crypto) EncryptRaw(msg []byte) (string, error) {
	n := headerLen + len(msg) + len(c.receiveID)
	pad := padBlock - n%padBlock
	pt := make([]byte, n+pad)
	if _, err := rand.Read(pt[:randomLen]); err != nil {
		return "", fmt.Errorf("wecom encrypt: %w", err)
	}
	binary.BigEndian.PutUint32(pt[randomLen:headerLen], uint32(len(msg)))
	copy(pt[headerLen:], msg)
	copy(pt[headerLen+len(msg):], c.receiveID)
	for i := n; i < len(pt); i++ {
		pt[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(c.block, c.iv).CryptBlocks(pt, pt)
	return base64.StdEncoding.EncodeToString(pt), nil
}

// cdata marshals as <![CDATA[…]]>, as WeCom writes its XML.
type cdata struct {
	Value string `xml:",cdata"`
}

// encryptedReply is the envelope of an encrypted passive reply.
type encryptedReply struct {
	XMLName      xml.Name `xml:"xml"`
	Encrypt      cdata    `xml:"Encrypt"`
	MsgSignature cdata    `xml:"MsgSignature"`
	TimeStamp    string   `xml:"TimeStamp"`
	Nonce        cdata    `xml:"Nonce"`
}

// Encrypt seals msg (a passive reply's inner XML) and returns the reply
// envelope <xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>, signed
// over timestamp and nonce.
func (c *Crypto) Encrypt(msg []byte, timestamp, nonce string) ([]byte, error) {
	enc, err := c.EncryptRaw(msg)
	if err != nil {
		return nil, err
	}
	out, err := xml.Marshal(encryptedReply{
		Encrypt:      cdata{enc},
		MsgSignature: cdata{c.Signature(timestamp, nonce, enc)},
		TimeStamp:    timestamp,
		Nonce:        cdata{nonce},
	})
	if err != nil {
		return nil, fmt.Errorf("wecom encrypt: %w", err)
	}
	return out, nil
}
