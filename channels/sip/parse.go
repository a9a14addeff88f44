package sip

import (
	"bytes"
	"strconv"
	"strings"
)

// parseDTMFInfo reads the digit of a SIP INFO body: application/dtmf-relay
// ("Signal=5\r\nDuration=160", Cisco/Asterisk style, Signal may be 0-9,
// *, #, A-D or the event numbers 10-15) or application/dtmf ("5").
func parseDTMFInfo(contentType string, body []byte) (rune, bool) {
	ct := strings.ToLower(strings.TrimSpace(contentType))
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = strings.TrimSpace(ct[:i])
	}
	switch ct {
	case "application/dtmf-relay":
		for _, line := range bytes.Split(body, []byte("\n")) {
			k, v, ok := bytes.Cut(line, []byte("="))
			if !ok || !strings.EqualFold(string(bytes.TrimSpace(k)), "signal") {
				continue
			}
			return dtmfDigit(string(bytes.TrimSpace(v)))
		}
		return 0, false
	case "application/dtmf":
		return dtmfDigit(string(bytes.TrimSpace(body)))
	}
	return 0, false
}

// dtmfDigit maps "5", "*", "#", "A".."D" (any case) or the RFC 4733 event
// numbers "10" (*), "11" (#), "12".."15" (A-D) to the digit.
func dtmfDigit(s string) (rune, bool) {
	if len(s) == 1 {
		switch c := rune(s[0]); {
		case c >= '0' && c <= '9', c == '*', c == '#':
			return c, true
		case c >= 'A' && c <= 'D':
			return c, true
		case c >= 'a' && c <= 'd':
			return c - 'a' + 'A', true
		}
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 10 || n > 15 {
		return 0, false
	}
	return rune("*#ABCD"[n-10]), true
}

// parseSipfrag reads the status code of a message/sipfrag body (RFC 3420),
// "SIP/2.0 200 OK", as NOTIFYs for a REFER carry it.
func parseSipfrag(body []byte) (int, bool) {
	line, _, _ := bytes.Cut(body, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 2 || !strings.HasPrefix(strings.ToUpper(f[0]), "SIP/") {
		return 0, false
	}
	code, err := strconv.Atoi(f[1])
	if err != nil || code < 100 || code > 699 {
		return 0, false
	}
	return code, true
}

func hasPrefixFold(s, prefix string) bool {
	s = strings.TrimSpace(s)
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
