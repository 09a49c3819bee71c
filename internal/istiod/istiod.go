// Package istiod is how ztunnel connects to istiod, for certificates and for xDS alike:
// the transport credentials (trusted roots) and the per-call credentials (bearer token,
// cluster id, extra headers).
package istiod

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ztunnel-go/ztunnel/internal/identity"
)

// CallCreds adds istiod's metadata to every call. The token file is read on every call:
// Kubernetes rotates projected tokens, and a stale one would be refused.
type CallCreds struct {
	Token     Token
	ClusterID string
	Headers   []Header
	// Insecure allows the token over plaintext (an http:// address, for local tests).
	Insecure bool
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (c *CallCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	tok, err := ReadToken(c.Token)
	if err != nil {
		return nil, err
	}
	md := map[string]string{"authorization": "Bearer " + tok, "clusterid": c.ClusterID}
	for _, h := range c.Headers {
		md[h.Name] = h.Value
	}
	return md, nil
}

// RequireTransportSecurity: a bearer token travels in plaintext only when asked.
func (c *CallCreds) RequireTransportSecurity() bool { return !c.Insecure }

// Roots is where trusted roots come from: a file, the system pool, or inline PEM (as
// XDS_ROOT_CA and CA_ROOT_CA say; app maps them).
type Roots struct {
	File   string
	System bool
	PEM    string
}

// Token is the bearer credential for istiod: a file re-read on every use, or a literal.
type Token struct {
	File    string
	Literal string
}

// Header is one extra gRPC metadata entry (XDS_HEADER_*, CA_HEADER_*).
type Header struct{ Name, Value string }

// ReadToken returns the literal token, or the trimmed content of the token file.
func ReadToken(t Token) (string, error) {
	if t.Literal != "" {
		return t.Literal, nil
	}
	b, err := os.ReadFile(t.File)
	if err != nil {
		return "", fmt.Errorf("reading token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", t.File)
	}
	return tok, nil
}

// LoadRoots reads a trust bundle: the system pool, inline PEM, or a PEM file.
func LoadRoots(r Roots) (*x509.CertPool, error) {
	if r.System {
		return x509.SystemCertPool()
	}
	data := []byte(r.PEM)
	if r.PEM == "" {
		var err error
		if data, err = os.ReadFile(r.File); err != nil {
			return nil, fmt.Errorf("reading root certificates: %w", err)
		}
	}
	certs, err := identity.ParsePEM(data)
	if err != nil {
		return nil, fmt.Errorf("root certificates: %w", err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no root certificates")
	}
	return pool, nil
}
