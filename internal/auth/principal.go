package auth

import "fmt"

// Role is what a principal may do.
type Role string

// Roles.
const (
	// RoleAdmin may use every route, including /v1/admin.
	RoleAdmin Role = "admin"
	// RoleClient may chat and read only its own sessions.
	RoleClient Role = "client"
)

// ParseRole accepts "admin" or "client".
func ParseRole(s string) (Role, error) {
	switch Role(s) {
	case RoleAdmin, RoleClient:
		return Role(s), nil
	}
	return "", fmt.Errorf("unknown role %q: use admin or client", s)
}

// Principal kinds.
const (
	KindAPIKey   = "apikey"
	KindJWT      = "jwt"
	KindLoopback = "loopback"
)

// Principal is an authenticated caller.
type Principal struct {
	// Kind is KindAPIKey, KindJWT or KindLoopback.
	Kind string `json:"kind"`
	// ID identifies the credential: the key id, the token's jti or subject.
	ID string `json:"id"`
	// Subject owns the sessions the principal creates: "key:<id>" for API
	// keys, the token's sub claim for JWTs.
	Subject string `json:"subject"`
	// Role is what it may do.
	Role Role `json:"role"`
}

// IsAdmin reports whether p has the admin role.
func (p Principal) IsAdmin() bool { return p.Role == RoleAdmin }

// CanAccess reports whether p may read a resource owned by subject: admins
// read everything, clients only what they own.
func (p Principal) CanAccess(subject string) bool {
	return p.IsAdmin() || (subject != "" && p.Subject == subject)
}
