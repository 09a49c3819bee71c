package crl_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ztunnel-go/ztunnel/internal/crl"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pki is a root, an intermediate under it (as a plugged-in Istio CA), and leaves.
type pki struct {
	root, inter   *x509.Certificate
	rootK, interK *ecdsa.PrivateKey
	serial        int64
}

func newPKI(t *testing.T, name string) *pki {
	p := &pki{}
	p.root, p.rootK = p.issue(t, nil, nil, &x509.Certificate{Subject: pkix.Name{CommonName: name + " root"}, IsCA: true})
	p.inter, p.interK = p.issue(t, p.root, p.rootK, &x509.Certificate{Subject: pkix.Name{CommonName: name + " intermediate"}, IsCA: true})
	return p
}

func (p *pki) issue(t *testing.T, parent *x509.Certificate, pk *ecdsa.PrivateKey, tmpl *x509.Certificate) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.serial++
	tmpl.SerialNumber = big.NewInt(p.serial)
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.BasicConstraintsValid = true
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}
	if tmpl.IsCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	if parent == nil {
		parent, pk = tmpl, k
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, k.Public(), pk)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, k
}

func (p *pki) leaf(t *testing.T, sa string) *x509.Certificate {
	u, _ := url.Parse("spiffe://cluster.local/ns/default/sa/" + sa)
	c, _ := p.issue(t, p.inter, p.interK, &x509.Certificate{URIs: []*url.URL{u}})
	return c
}

// crlPEM is a CRL by issuer (signed with key) revoking certs.
func crlPEM(t *testing.T, issuer *x509.Certificate, key *ecdsa.PrivateKey, certs ...*x509.Certificate) []byte {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(time.Now().UnixNano()), ThisUpdate: time.Now().Add(-2 * time.Hour),
		NextUpdate: time.Now().Add(-time.Hour)} // already stale: it still applies
	for _, c := range certs {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// Pins Rust's CrlManager::parse_crl_file and verify_cert_chain (RevocationCheckDepth::
// Chain, UnknownStatusPolicy::Allow, ExpirationPolicy::Ignore), plus the signature
// check of each CRL against the mesh CAs.
func TestParseAndCheck(t *testing.T) {
	ztest.NoLeaks(t)
	mesh, other := newPKI(t, "mesh"), newPKI(t, "other")
	good, bad := mesh.leaf(t, "good"), mesh.leaf(t, "bad")
	chainOf := func(l *x509.Certificate) []*x509.Certificate { return []*x509.Certificate{l, mesh.inter, mesh.root} }
	anchors := []*x509.Certificate{mesh.root, mesh.inter}
	// A CRL under the intermediate's name, signed by another key: a forgery.
	forged := crlPEM(t, &x509.Certificate{Subject: mesh.inter.Subject, RawSubject: mesh.inter.RawSubject,
		SubjectKeyId: []byte{1}, KeyUsage: x509.KeyUsageCRLSign}, other.interK, good)
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: mesh.root.Raw})
	der, _ := pem.Decode(crlPEM(t, mesh.inter, mesh.interK, bad))
	for _, tt := range []struct {
		name          string
		data          []byte
		anchors       []*x509.Certificate
		err           error // from Parse; nil: parses
		revoked, kept []*x509.Certificate
	}{
		{name: "empty file revokes nothing", data: []byte("\n"), anchors: anchors, kept: []*x509.Certificate{good, bad}},
		{name: "leaf revoked by the intermediate's CRL", data: crlPEM(t, mesh.inter, mesh.interK, bad), anchors: anchors,
			revoked: []*x509.Certificate{bad}, kept: []*x509.Certificate{good}},
		{name: "intermediate revoked by the root's CRL", data: crlPEM(t, mesh.root, mesh.rootK, mesh.inter), anchors: anchors,
			revoked: []*x509.Certificate{good, bad}},
		{name: "several CRLs and other PEM blocks", data: slicesConcat(cert, crlPEM(t, mesh.root, mesh.rootK),
			crlPEM(t, mesh.inter, mesh.interK, good)), anchors: anchors, revoked: []*x509.Certificate{good}, kept: []*x509.Certificate{bad}},
		{name: "one DER CRL", data: der.Bytes, anchors: anchors, revoked: []*x509.Certificate{bad}, kept: []*x509.Certificate{good}},
		{name: "garbage", data: []byte("not a CRL"), anchors: anchors, err: errors.New("x509")},
		{name: "PEM then garbage", data: append(crlPEM(t, mesh.root, mesh.rootK), "junk"...), anchors: anchors, err: errors.New("not PEM")},
		{name: "foreign CA's CRL refused", data: crlPEM(t, other.inter, other.interK, good), anchors: anchors, err: crl.ErrUnknownIssuer},
		{name: "forged signature refused", data: forged, anchors: anchors, err: errors.New("signature does not verify")},
		{name: "no anchors yet: forged CRL checked at use, revokes nothing", data: forged, kept: []*x509.Certificate{good, bad}},
		{name: "no anchors yet: genuine CRL checked at use", data: crlPEM(t, mesh.inter, mesh.interK, bad),
			revoked: []*x509.Certificate{bad}, kept: []*x509.Certificate{good}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := crl.Parse(tt.data, tt.anchors)
			if tt.err != nil {
				if err == nil || !errors.Is(err, tt.err) && !bytes.Contains([]byte(err.Error()), []byte(tt.err.Error())) {
					t.Fatalf("Parse error = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for _, c := range tt.revoked {
				if err := s.Check(chainOf(c)); !errors.Is(err, crl.ErrRevoked) {
					t.Errorf("Check(%s) = %v, want revoked", c.URIs[0], err)
				}
			}
			for _, c := range tt.kept {
				if err := s.Check(chainOf(c)); err != nil {
					t.Errorf("Check(%s) = %v, want allowed", c.URIs[0], err)
				}
			}
		})
	}
}

func slicesConcat(b ...[]byte) []byte { return bytes.Join(b, nil) }
