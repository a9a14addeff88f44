package wecom

import "errors"

// Errors.
var (
	// ErrKey: the EncodingAESKey is not 43 characters of base64 for 32
	// bytes. Returned by NewCrypto (and New).
	ErrKey = errors.New("wecom: invalid EncodingAESKey")
	// ErrDecrypt: a ciphertext that is not valid base64, not whole AES
	// blocks, badly padded, or whose plaintext framing is inconsistent.
	// Returned by Crypto.Decrypt.
	ErrDecrypt = errors.New("wecom: cannot decrypt")
	// ErrReceiveID: the decrypted message names another corp (receive id)
	// than the configured one. Returned by Crypto.Decrypt.
	ErrReceiveID = errors.New("wecom: receive id mismatch")
	// ErrAPI: the WeCom API answered a nonzero errcode. Send wraps it
	// (with the code and message) in channels.Permanent or
	// channels.RetryAfter as appropriate.
	ErrAPI = errors.New("wecom api error")
)
