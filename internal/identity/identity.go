// Package identity is the SPIFFE identity of an Istio workload,
// spiffe://<trust domain>/ns/<namespace>/sa/<service account>, and the certificate that
// proves it. It does no I/O.
package identity

import (
	"errors"
	"fmt"
	"strings"
)

// Identity is comparable and usable as a map key. The zero value is "no identity".
type Identity struct {
	TrustDomain    string
	Namespace      string
	ServiceAccount string
}

// Errors of Parse, one per malformed form, so that callers and tests can tell them apart.
var (
	ErrScheme      = errors.New(`want the "spiffe://" scheme`)
	ErrTrustDomain = errors.New("invalid trust domain")
	ErrPath        = errors.New(`want the path /ns/<namespace>/sa/<service account>`)
	ErrSegment     = errors.New("invalid namespace or service account")
)

const scheme = "spiffe://"

// New builds an identity from its parts without validating them; use Parse for input.
func New(trustDomain, namespace, serviceAccount string) Identity {
	return Identity{TrustDomain: trustDomain, Namespace: namespace, ServiceAccount: serviceAccount}
}

// Parse reads spiffe://td/ns/<ns>/sa/<sa>. It is strict: exactly five segments, a
// lowercase scheme, and characters SPIFFE allows (no percent-encoding, no NUL, no
// empty or dot segments), because a lenient parser is a way to be someone else.
func Parse(s string) (Identity, error) {
	rest, ok := strings.CutPrefix(s, scheme)
	if !ok {
		return Identity{}, fmt.Errorf("identity %q: %w", s, ErrScheme)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 5 || parts[1] != "ns" || parts[3] != "sa" {
		return Identity{}, fmt.Errorf("identity %q: %w", s, ErrPath)
	}
	if !validTrustDomain(parts[0]) {
		return Identity{}, fmt.Errorf("identity %q: %w", s, ErrTrustDomain)
	}
	if !validSegment(parts[2]) || !validSegment(parts[4]) {
		return Identity{}, fmt.Errorf("identity %q: %w", s, ErrSegment)
	}
	return Identity{TrustDomain: parts[0], Namespace: parts[2], ServiceAccount: parts[4]}, nil
}

// String is the SPIFFE URI.
func (i Identity) String() string {
	if i.IsZero() {
		return ""
	}
	return scheme + i.TrustDomain + "/ns/" + i.Namespace + "/sa/" + i.ServiceAccount
}

// IsZero reports whether this is "no identity" (for example a plaintext peer).
func (i Identity) IsZero() bool { return i == Identity{} }

// validTrustDomain follows the SPIFFE spec: lowercase letters, digits, '.', '-', '_'.
func validTrustDomain(td string) bool {
	if td == "" || len(td) > 255 {
		return false
	}
	for i := 0; i < len(td); i++ {
		c := td[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validSegment follows the SPIFFE spec for path segments: letters, digits, '.', '-',
// '_', and not "." or "..".
func validSegment(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
