// Package crl enforces the mesh CA's certificate revocation lists (CRL_PATH, Istio's
// chart's peerCaCrl): peers whose leaf or intermediate is revoked are refused at the
// handshake, and connections already open with such a peer are closed when a new CRL
// arrives, as Rust ztunnel's CrlManager and RevocationIndex do.
package crl

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
)

// ErrRevoked is a peer whose chain holds a revoked certificate. The proxy's response
// flag for it is CERT_REVOKED.
var ErrRevoked = errors.New("certificate revoked")

// ErrUnknownIssuer is a CRL signed by none of the CAs ztunnel knows: a foreign CA's, or
// an intermediate none of ztunnel's own certificates has come through yet.
var ErrUnknownIssuer = errors.New("issued by a CA that is not one of the mesh's")

// Set is one load of the CRL file; it never changes once built.
type Set struct {
	byIssuer map[string][]*list // by the issuer's raw subject
	lists    int
	revoked  int
}

// list is one CRL and the serials it revokes.
type list struct {
	rl      *x509.RevocationList
	serials map[string]struct{} // big.Int.Text(16) of each revoked serial
	// verified caches, by an issuer certificate's raw DER, whether rl's signature verifies
	// under it: Check meets the same intermediate on every handshake.
	verified sync.Map
}

// Lists and Revoked count the CRLs and their entries, for logs and the dump.
func (s *Set) Lists() int   { return s.lists }
func (s *Set) Revoked() int { return s.revoked }

// Parse reads a CRL file: PEM holding any number of `X509 CRL` blocks (other blocks are
// skipped, as Rust's rustls_pemfile does), or one DER CRL. An empty file revokes nothing.
// Every CRL must be signed by one of anchors, the CAs of the mesh (its roots and the
// intermediates ztunnel's own chains carry): a CRL from another CA, or one whose
// signature does not verify, fails the whole file, so the caller keeps its last good set.
// With no anchors yet (no certificate fetched), signatures are checked at use instead,
// against the issuer in the peer's verified chain, as webpki does; a foreign CRL then
// matches no chain and revokes nothing.
func Parse(data []byte, anchors []*x509.Certificate) (*Set, error) {
	ders, err := blocks(data)
	if err != nil {
		return nil, err
	}
	s := &Set{byIssuer: map[string][]*list{}}
	for i, der := range ders {
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, fmt.Errorf("CRL %d: %w", i+1, err)
		}
		l := &list{rl: rl, serials: make(map[string]struct{}, len(rl.RevokedCertificateEntries))}
		if err := l.verifyAgainst(anchors); err != nil {
			return nil, fmt.Errorf("CRL %d: %w", i+1, err)
		}
		for _, e := range rl.RevokedCertificateEntries {
			l.serials[e.SerialNumber.Text(16)] = struct{}{}
		}
		s.byIssuer[string(rl.RawIssuer)] = append(s.byIssuer[string(rl.RawIssuer)], l)
		s.lists++
		s.revoked += len(l.serials)
	}
	return s, nil
}

// blocks splits data into DER CRLs. A DER file is taken as it is: its last byte may
// well be 0x0a or 0x20 (the end of a signature), so only PEM is trimmed.
func blocks(data []byte) ([][]byte, error) {
	rest := bytes.TrimSpace(data)
	if len(rest) == 0 {
		return nil, nil
	}
	if !bytes.HasPrefix(rest, []byte("-----BEGIN")) {
		return [][]byte{data}, nil
	}
	var ders [][]byte
	for len(rest) > 0 {
		b, r := pem.Decode(rest)
		if b == nil {
			return nil, errors.New("data after the last PEM block is not PEM")
		}
		if b.Type == "X509 CRL" {
			ders = append(ders, b.Bytes)
		}
		rest = bytes.TrimSpace(r)
	}
	return ders, nil
}

func (l *list) verifyAgainst(anchors []*x509.Certificate) error {
	if len(anchors) == 0 {
		return nil
	}
	var sigErr error
	for _, ca := range anchors {
		if !bytes.Equal(ca.RawSubject, l.rl.RawIssuer) {
			continue
		}
		if sigErr = l.rl.CheckSignatureFrom(ca); sigErr == nil {
			l.verified.Store(string(ca.Raw), true)
			return nil
		}
	}
	if sigErr != nil {
		return fmt.Errorf("signature does not verify against %q: %w", l.rl.Issuer, sigErr)
	}
	return fmt.Errorf("%w: %q", ErrUnknownIssuer, l.rl.Issuer)
}

// signedBy reports whether issuer signed the CRL, once per issuer certificate.
func (l *list) signedBy(issuer *x509.Certificate) bool {
	if v, ok := l.verified.Load(string(issuer.Raw)); ok {
		return v.(bool)
	}
	ok := l.rl.CheckSignatureFrom(issuer) == nil
	l.verified.Store(string(issuer.Raw), ok)
	return ok
}

// Check returns ErrRevoked, wrapped with which certificate, when a certificate of chain
// (leaf first, root last; the root itself is the trust anchor and is not checked, as
// webpki's RevocationCheckDepth::Chain) is on a CRL its issuer signed. A CRL past its
// NextUpdate still applies (Rust: ExpirationPolicy::Ignore); a certificate no CRL
// covers is allowed (UnknownStatusPolicy::Allow). A nil Set revokes nothing.
func (s *Set) Check(chain []*x509.Certificate) error {
	if s == nil {
		return nil
	}
	for i := 0; i+1 < len(chain); i++ {
		cert, issuer := chain[i], chain[i+1]
		for _, l := range s.byIssuer[string(issuer.RawSubject)] {
			if _, ok := l.serials[cert.SerialNumber.Text(16)]; ok && l.signedBy(issuer) {
				return fmt.Errorf("%w: %q (serial %s) is on the CRL of %q", ErrRevoked,
					describe(cert), cert.SerialNumber.Text(16), l.rl.Issuer)
			}
		}
	}
	return nil
}

// CheckChains judges a peer that verified along chains: revoked only if every chain is.
func (s *Set) CheckChains(chains [][]*x509.Certificate) error {
	var err error
	for _, c := range chains {
		if err = s.Check(c); err == nil {
			return nil
		}
	}
	return err
}

// describe names a certificate: its first URI SAN (a SPIFFE identity), else its subject.
func describe(c *x509.Certificate) string {
	if len(c.URIs) > 0 {
		return c.URIs[0].String()
	}
	return c.Subject.String()
}
