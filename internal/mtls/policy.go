package mtls

import (
	"crypto/fips140"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// Policy is the TLS policy of mesh connections, the same both ways. The zero Policy is
// Rust ztunnel's default: TLS 1.3 with AES-GCM only, Go's default key exchanges, no CRL.
type Policy struct {
	// TLS12 also allows TLS 1.2, with the ECDHE AES-GCM suites Rust allows then
	// (TLS12_ENABLED).
	TLS12 bool
	// PQC restricts key exchange to X25519MLKEM768, so a peer that cannot do it is
	// refused (COMPLIANCE_POLICY=pqc). TLS 1.2 has no such group: PQC means TLS 1.3.
	PQC bool
	// Revoked judges a peer's verified chains (crl.Manager.Check); nil: no CRL.
	Revoked func(chains [][]*x509.Certificate) error
}

// ErrKeyExchange is a handshake that agreed on a group the policy does not allow.
var ErrKeyExchange = errors.New("key exchange not allowed by COMPLIANCE_POLICY=pqc")

// tls12Suites are the TLS 1.2 suites of Rust's providers with TLS12_ENABLED (src/tls/lib.rs).
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
}

// apply sets versions, suites and groups on a fresh config.
func (p *Policy) apply(c *tls.Config) {
	c.MinVersion = tls.VersionTLS13
	if p != nil && p.TLS12 && !p.PQC {
		c.MinVersion = tls.VersionTLS12
		c.CipherSuites = tls12Suites
	}
	if p != nil && p.PQC {
		c.CurvePreferences = []tls.CurveID{tls.X25519MLKEM768}
	}
}

// allowed refuses, after the fact, what a Config cannot forbid: Go always offers its
// TLS 1.3 suites (ChaCha20 among them), and a group outside the policy must not slip
// through whatever the peer did.
func (p *Policy) allowed(cs tls.ConnectionState) error {
	switch {
	case cs.Version == tls.VersionTLS13 && !allowedSuite(cs.CipherSuite):
		return ErrCipherNotAllowed
	case cs.Version == tls.VersionTLS12 && !(p != nil && p.TLS12) || cs.Version < tls.VersionTLS12:
		return fmt.Errorf("TLS version %s not allowed (TLS12_ENABLED is off)", tls.VersionName(cs.Version))
	case p != nil && p.PQC && cs.CurveID != tls.X25519MLKEM768:
		return fmt.Errorf("%w: peer agreed on %s", ErrKeyExchange, cs.CurveID)
	}
	return nil
}

// revoked applies the CRL, if any.
func (p *Policy) revoked(chains [][]*x509.Certificate) error {
	if p == nil || p.Revoked == nil {
		return nil
	}
	return p.Revoked(chains)
}

// Describe is the policy as the dump's config shows it: versions, suites, key exchange
// groups and the crypto module in use.
func (p *Policy) Describe() PolicyJSON {
	c := &tls.Config{}
	p.apply(c)
	j := PolicyJSON{Versions: []string{"TLSv1_3"}, Provider: Provider(),
		CipherSuites: []string{"TLS13_AES_256_GCM_SHA384", "TLS13_AES_128_GCM_SHA256"}, KeyExchange: []string{"default"}}
	if c.MinVersion == tls.VersionTLS12 {
		j.Versions = append(j.Versions, "TLSv1_2")
		for _, s := range c.CipherSuites {
			j.CipherSuites = append(j.CipherSuites, tls.CipherSuiteName(s))
		}
	}
	if len(c.CurvePreferences) > 0 {
		j.KeyExchange = j.KeyExchange[:0]
		for _, g := range c.CurvePreferences {
			j.KeyExchange = append(j.KeyExchange, g.String())
		}
	}
	j.CRL = p != nil && p.Revoked != nil
	return j
}

// PolicyJSON is Describe's shape in the dump.
type PolicyJSON struct {
	Versions     []string `json:"versions"`
	CipherSuites []string `json:"cipherSuites"`
	KeyExchange  []string `json:"keyExchange"`
	CRL          bool     `json:"crl"`
	Provider     string   `json:"cryptoProvider"`
}

// Provider names the crypto in use, as Rust's CRYPTO_PROVIDER names its feature:
// Go's FIPS 140-3 module when GODEBUG=fips140=on (or a GOFIPS140 build), else Go's.
func Provider() string {
	if fips140.Enabled() {
		return "go-fips140"
	}
	return "go"
}
