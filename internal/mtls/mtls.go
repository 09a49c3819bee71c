// Package mtls builds the TLS configurations of HBONE: the client presents the source
// workload's certificate and accepts only the expected destination identities; the
// server presents the destination workload's certificate and requires a client
// certificate from the same trust domain.
package mtls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/identity"
)

// Errors of peer verification, distinct so that logs and metrics can tell them apart.
var (
	ErrNoPeerCert       = errors.New("peer presented no certificate")
	ErrUnexpectedPeer   = errors.New("peer identity is not one of the expected")
	ErrTrustDomain      = errors.New("peer is from another trust domain")
	ErrCipherNotAllowed = errors.New("cipher suite not allowed (AES-GCM only)")
	ErrNotH2            = errors.New("client did not negotiate ALPN h2")
	ErrCALeaf           = errors.New("peer certificate is a CA certificate, not a workload's")
)

// HandshakeTimeout bounds a TLS handshake when the caller gives no bound, so a silent
// peer cannot hold a goroutine (TLS_HANDSHAKE_TIMEOUT's default).
const HandshakeTimeout = 10 * time.Second

// allowedSuite keeps ztunnel's TLS 1.3 suites. Go does not let a Config restrict TLS 1.3
// suites, so a handshake that chose another (ChaCha20) is refused after the fact
// (Policy.allowed); TLS 1.2 suites are restricted by the Config itself.
func allowedSuite(s uint16) bool {
	return s == tls.TLS_AES_128_GCM_SHA256 || s == tls.TLS_AES_256_GCM_SHA384
}

// ClientConfig is for one outbound connection: it presents src and accepts a server
// whose certificate chains to src's roots and names one of expected. No SNI is sent and
// sessions are never resumed, so every connection verifies the chain afresh.
func ClientConfig(pol *Policy, src *identity.Cert, expected []identity.Identity) *tls.Config {
	roots := src.RootPool()
	c := &tls.Config{
		NextProtos:         []string{"h2"},
		Certificates:       []tls.Certificate{src.TLS},
		InsecureSkipVerify: true, // Go checks DNS/IP names only; VerifyConnection checks SPIFFE
		VerifyConnection: func(cs tls.ConnectionState) error {
			if err := pol.allowed(cs); err != nil {
				return err
			}
			id, err := verifyChain(pol, cs, roots, x509.ExtKeyUsageServerAuth)
			if err != nil {
				return err
			}
			if !slices.Contains(expected, id) {
				return fmt.Errorf("%w: got %s, want one of %v", ErrUnexpectedPeer, id, expected)
			}
			return nil
		},
	}
	pol.apply(c)
	return c
}

// CertFunc returns the certificate of the workload that owns local, the address the
// client connected to.
type CertFunc func(ctx context.Context, local net.Addr) (*identity.Cert, error)

// ServerConfig picks, per connection, the certificate of the destination workload (the
// listener accepts for every local workload, so SNI-less clients are told apart by the
// address they reached), and requires a client certificate from the same trust domain.
func ServerConfig(pol *Policy, certFor CertFunc) *tls.Config {
	c := &tls.Config{
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			cert, err := certFor(hello.Context(), hello.Conn.LocalAddr())
			if err != nil {
				return nil, err
			}
			return serverConfigFor(pol, cert), nil
		},
	}
	pol.apply(c)
	return c
}

func serverConfigFor(pol *Policy, cert *identity.Cert) *tls.Config {
	roots := cert.RootPool()
	c := &tls.Config{
		NextProtos:             []string{"h2"},
		Certificates:           []tls.Certificate{cert.TLS},
		ClientAuth:             tls.RequireAnyClientCert, // verified below, against these roots
		SessionTicketsDisabled: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if err := pol.allowed(cs); err != nil {
				return err
			}
			id, err := verifyChain(pol, cs, roots, x509.ExtKeyUsageClientAuth)
			if err != nil {
				return err
			}
			if id.TrustDomain != cert.ID.TrustDomain {
				return fmt.Errorf("%w: %s, ours is %s", ErrTrustDomain, id, cert.ID.TrustDomain)
			}
			// HBONE is HTTP/2 only: a client offering no ALPN, or only http/1.1, is not
			// a ztunnel and is refused in the handshake rather than after it.
			if cs.NegotiatedProtocol != "h2" {
				return ErrNotH2
			}
			return nil
		},
	}
	pol.apply(c)
	return c
}

// verifyChain checks the peer's chain against roots at the current time, and against
// the policy's CRL, and returns the identity its leaf proves.
func verifyChain(pol *Policy, cs tls.ConnectionState, roots *x509.CertPool, usage x509.ExtKeyUsage) (identity.Identity, error) {
	if len(cs.PeerCertificates) == 0 {
		return identity.Identity{}, ErrNoPeerCert
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	// Go's Verify takes a CA certificate as a leaf; webpki (Rust ztunnel) does not: a
	// CA's own certificate proves no workload.
	if leaf.IsCA {
		return identity.Identity{}, ErrCALeaf
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}})
	if err != nil {
		return identity.Identity{}, fmt.Errorf("verifying peer certificate: %w", err)
	}
	if err := pol.revoked(chains); err != nil {
		return identity.Identity{}, err
	}
	id, err := identity.FromCert(leaf)
	if err != nil {
		return identity.Identity{}, fmt.Errorf("peer certificate: %w", err)
	}
	return id, nil
}

// PeerIdentity is the identity a completed handshake proved.
func PeerIdentity(cs tls.ConnectionState) (identity.Identity, error) {
	if len(cs.PeerCertificates) == 0 {
		return identity.Identity{}, ErrNoPeerCert
	}
	return identity.FromCert(cs.PeerCertificates[0])
}

// Handshake runs a TLS handshake bounded by timeout (HandshakeTimeout when 0) and ctx.
func Handshake(ctx context.Context, c *tls.Conn, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = HandshakeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.HandshakeContext(ctx)
}
