package xmpp

import (
	"errors"
	"net"
	"strings"
	"unicode"
)

// JIDs are handled as strings: split, compared case-insensitively on the
// bare part and checked for the characters RFC 7622 forbids. The server
// stamps sender addresses already normalised, so no PRECIS profile is
// applied here.

// splitJID splits "local@domain/resource".
func splitJID(s string) (local, domain, resource string) {
	rest := s
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest, resource = rest[:i], rest[i+1:]
	}
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		local, domain = rest[:i], rest[i+1:]
	} else {
		domain = rest
	}
	return local, domain, resource
}

// bareJID strips the resource.
func bareJID(s string) string {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i]
	}
	return s
}

// resourceOf returns the resource of a full JID ("" for a bare one).
func resourceOf(s string) string {
	_, _, r := splitJID(s)
	return r
}

// sameJID compares two JIDs, case-insensitively on the bare part and
// exactly on the resource.
func sameJID(a, b string) bool {
	la, da, ra := splitJID(a)
	lb, db, rb := splitJID(b)
	return strings.EqualFold(la, lb) && strings.EqualFold(da, db) && ra == rb
}

// sameBare compares the bare parts of two JIDs case-insensitively.
func sameBare(a, b string) bool {
	return strings.EqualFold(bareJID(a), bareJID(b))
}

// checkJID reports what is wrong with a JID: needLocal requires
// local@domain, bare forbids a resource.
func checkJID(s string, needLocal, bare bool) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > 3071 {
		return errors.New("longer than 3071 bytes")
	}
	local, domain, resource := splitJID(s)
	switch {
	case needLocal && local == "":
		return errors.New(`must be "name@domain"`)
	case strings.Contains(s, "@") && local == "":
		return errors.New("empty name before @")
	case domain == "":
		return errors.New("no domain")
	case bare && strings.Contains(s, "/"):
		return errors.New("must not have a /resource")
	case strings.Contains(s, "/") && resource == "":
		return errors.New("empty resource after /")
	}
	if strings.ContainsAny(local, "\"&'/:<>@") {
		return errors.New(`the name part must not contain any of " & ' / : < > @`)
	}
	if strings.ContainsAny(domain, "@/<>&\"' ") {
		return errors.New("invalid domain")
	}
	for _, r := range s {
		if unicode.IsSpace(r) && r != ' ' || unicode.IsControl(r) || r == '\uFFFD' {
			return errors.New("contains control characters")
		}
	}
	if strings.ContainsRune(local, ' ') {
		return errors.New("the name part must not contain spaces")
	}
	return nil
}

// isLoopback reports whether a host (without port) is a loopback address
// or "localhost".
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
