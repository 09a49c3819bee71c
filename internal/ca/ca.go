// Package ca is ztunnel's built-in certificate authority (FAKE_CA=true): an in-process CA
// that signs real workload certificates for any identity. It lets ztunnel run with no
// istiod (standalone mode) and backs the test kit's fake Istio CA. It trusts whoever asks,
// so it is not for production clusters.
package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/identity"
)

// Backdate tolerates clocks of other nodes running slightly behind ours. A leaf is
// backdated by at most a tenth of its life, so short-lived ones keep most of it ahead.
const Backdate = time.Minute

// CA signs with one self-signed root that lives as long as the process.
type CA struct {
	root    *x509.Certificate // immutable
	rootPEM string
	key     crypto.Signer
	ttl     time.Duration
	now     func() time.Time
}

// New creates a root for trustDomain; leaves live ttl. now is the clock (nil: time.Now).
func New(trustDomain string, ttl time.Duration, now func() time.Time) (*CA, error) {
	if now == nil {
		now = time.Now
	}
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	t := now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{Organization: []string{trustDomain}},
		NotBefore:             t.Add(-Backdate),
		NotAfter:              t.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("creating root certificate: %w", err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing root certificate: %w", err)
	}
	return &CA{root: root, rootPEM: string(identity.EncodePEM(root)), key: key, ttl: ttl, now: now}, nil
}

// NewKey is the key type Istio uses for workloads: ECDSA P-256.
func NewKey() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	return k, nil
}

// Root is the CA certificate peers must trust.
func (c *CA) Root() *x509.Certificate { return c.root }

// RootPEM is Root in PEM.
func (c *CA) RootPEM() string { return c.rootPEM }

// Fetch issues a certificate for id with a fresh key, as a CA client would obtain one.
func (c *CA) Fetch(_ context.Context, id identity.Identity) (*identity.Cert, error) {
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	leaf, err := c.Issue(LeafTemplate(id, c.now(), c.ttl), key.Public())
	if err != nil {
		return nil, err
	}
	return identity.NewCert(id, key, []string{string(identity.EncodePEM(leaf)), c.rootPEM}, c.now())
}

// SignCSR answers a CSR as istiod does: the identity is the CSR's URI SAN, the answer is
// [leaf, root] in PEM. ttl 0 means the CA's default.
func (c *CA) SignCSR(csrPEM []byte, ttl time.Duration) ([]string, error) {
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("CSR is not a PEM CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("CSR signature: %w", err)
	}
	if len(csr.URIs) != 1 {
		return nil, fmt.Errorf("CSR has %d URI SANs, want 1", len(csr.URIs))
	}
	id, err := identity.Parse(csr.URIs[0].String())
	if err != nil {
		return nil, err
	}
	if ttl <= 0 {
		ttl = c.ttl
	}
	leaf, err := c.Issue(LeafTemplate(id, c.now(), ttl), csr.PublicKey)
	if err != nil {
		return nil, err
	}
	return []string{string(identity.EncodePEM(leaf)), c.rootPEM}, nil
}

// LeafTemplate is an Istio workload certificate: no subject, one URI SAN, usable for
// both ends of mTLS, valid from now (backdated) for ttl.
func LeafTemplate(id identity.Identity, now time.Time, ttl time.Duration) *x509.Certificate {
	u, _ := url.Parse(id.String())
	return &x509.Certificate{
		SerialNumber: randomSerial(),
		NotBefore:    now.Add(-min(Backdate, ttl/10)),
		NotAfter:     now.Add(ttl),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{u},
	}
}

// Issue signs any template with the root; tests use it to build odd certificates.
func (c *CA) Issue(tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.root, pub, c.key)
	if err != nil {
		return nil, fmt.Errorf("signing certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil { // crypto/rand does not fail on Linux; keep a distinct serial anyway
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

// RevocationList signs a CRL (PEM) that revokes serials, numbered number, so a mesh on
// the built-in CA can exercise CRL_PATH as one on Istio's CA does.
func (c *CA) RevocationList(number int64, serials ...*big.Int) ([]byte, error) {
	now := c.now()
	tmpl := &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: now.Add(-Backdate), NextUpdate: now.Add(24 * time.Hour)}
	for _, s := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: s, RevocationTime: now.Add(-Backdate)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, c.root, c.key)
	if err != nil {
		return nil, fmt.Errorf("signing CRL: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), nil
}
