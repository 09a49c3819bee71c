// Package istiod is how ztunnel connects to istiod, for certificates and for xDS alike:
// the transport credentials (trusted roots) and the per-call credentials (bearer token,
// cluster id, extra headers).
package istiod

import (
	"context"
	"errors"
)

// CallCreds adds istiod's metadata to every call. The token file is read on every call:
// Kubernetes rotates projected tokens, and a stale one would be refused.
type CallCreds struct {
	Token     func() (string, error) // the bearer token, read afresh for each call
	ClusterID string
	Headers   []Header
	// Insecure allows the token over plaintext (an http:// address, for local tests).
	Insecure bool
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (c *CallCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	if c.Token == nil {
		return nil, errors.New("no bearer token source")
	}
	tok, err := c.Token()
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

// Header is one extra gRPC metadata entry (XDS_HEADER_*, CA_HEADER_*).
type Header struct{ Name, Value string }
