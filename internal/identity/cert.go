package identity

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// Cert is one identity's credentials: key, leaf, intermediates, and the roots the CA
// sent (possibly several during a root rotation). It is immutable once built.
type Cert struct {
	ID            Identity
	Leaf          *x509.Certificate
	Intermediates []*x509.Certificate
	Roots         []*x509.Certificate
	TLS           tls.Certificate // leaf + intermediates + key, as crypto/tls presents them
}

// ErrWrongIdentity is a certificate for another identity than the one requested: a CA
// that answers it is refused, since presenting it would impersonate someone else.
var ErrWrongIdentity = errors.New("certificate identity differs from the one requested")

// NewCert assembles a CA's answer: chainPEM[0] is the leaf, the last element holds the
// root(s), elements between are intermediates (Istio's CA order). It refuses a chain
// that is for another identity, does not match key, has no root, or does not verify at
// now (expired, not yet valid, or signed by someone else).
func NewCert(want Identity, key crypto.Signer, chainPEM []string, now time.Time) (*Cert, error) {
	if len(chainPEM) < 2 {
		return nil, fmt.Errorf("CA response has %d certificates, want a leaf and at least one root", len(chainPEM))
	}
	var certs [][]*x509.Certificate
	for i, p := range chainPEM {
		cs, err := ParsePEM([]byte(p))
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", i, err)
		}
		certs = append(certs, cs)
	}
	if len(certs[0]) != 1 {
		return nil, fmt.Errorf("leaf element holds %d certificates, want 1", len(certs[0]))
	}
	c := &Cert{ID: want, Leaf: certs[0][0], Roots: certs[len(certs)-1]}
	for _, cs := range certs[1 : len(certs)-1] {
		c.Intermediates = append(c.Intermediates, cs...)
	}
	if err := c.check(want, key, now); err != nil {
		return nil, err
	}
	c.TLS = tls.Certificate{PrivateKey: key, Leaf: c.Leaf, Certificate: [][]byte{c.Leaf.Raw}}
	for _, ic := range c.Intermediates {
		c.TLS.Certificate = append(c.TLS.Certificate, ic.Raw)
	}
	return c, nil
}

func (c *Cert) check(want Identity, key crypto.Signer, now time.Time) error {
	got, err := FromCert(c.Leaf)
	if err != nil {
		return fmt.Errorf("leaf: %w", err)
	}
	if got != want {
		return fmt.Errorf("%w: requested %s, got %s", ErrWrongIdentity, want, got)
	}
	if !samePublicKey(c.Leaf.PublicKey, key.Public()) {
		return errors.New("leaf does not match the private key")
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range c.Roots {
		roots.AddCert(r)
	}
	for _, ic := range c.Intermediates {
		inter.AddCert(ic)
	}
	_, err = c.Leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return fmt.Errorf("verifying chain: %w", err)
	}
	return nil
}

func samePublicKey(a, b crypto.PublicKey) bool {
	ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ak.Equal(b)
}

// FromCert is the identity a certificate proves: its one URI SAN, which must be a
// valid SPIFFE ID. Certificates with several URI SANs are refused rather than guessed at.
func FromCert(c *x509.Certificate) (Identity, error) {
	if len(c.URIs) != 1 {
		return Identity{}, fmt.Errorf("want exactly one URI SAN, got %d", len(c.URIs))
	}
	return Parse(c.URIs[0].String())
}

// NotBefore and NotAfter bound the leaf's validity.
func (c *Cert) NotBefore() time.Time { return c.Leaf.NotBefore }
func (c *Cert) NotAfter() time.Time  { return c.Leaf.NotAfter }

// ValidAt reports whether the leaf may be presented at t.
func (c *Cert) ValidAt(t time.Time) bool {
	return !t.Before(c.Leaf.NotBefore) && t.Before(c.Leaf.NotAfter)
}

// HalfLife is when Istio renews a certificate: half way through its validity.
func (c *Cert) HalfLife() time.Time {
	return c.Leaf.NotBefore.Add(c.Leaf.NotAfter.Sub(c.Leaf.NotBefore) / 2)
}

// RootPool is the trust bundle for verifying peers.
func (c *Cert) RootPool() *x509.CertPool {
	p := x509.NewCertPool()
	for _, r := range c.Roots {
		p.AddCert(r)
	}
	return p
}

// ParsePEM reads every CERTIFICATE block; anything else in the input is an error.
func ParsePEM(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 || len(bytes.TrimSpace(data)) > 0 {
		return nil, errors.New("not PEM certificates")
	}
	return out, nil
}

// EncodePEM is the PEM of one certificate.
func EncodePEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}
