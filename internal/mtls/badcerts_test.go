package mtls_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/mtls"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// pki hand-builds the certificates a CA would never issue.
type pki struct {
	t        *testing.T
	root     *x509.Certificate
	key      crypto.Signer
	interKey crypto.Signer // signs leaves issued "by" an intermediate
}

func newPKI(t *testing.T, pathLen int) *pki {
	p := &pki{t: t}
	p.root, p.key = p.issue(nil, nil, x509.Certificate{IsCA: true, MaxPathLen: pathLen, MaxPathLenZero: pathLen == 0,
		KeyUsage: x509.KeyUsageCertSign})
	return p
}

// issue signs tmpl with parent (self-signed when nil), filling what the case does not set.
func (p *pki) issue(parent *x509.Certificate, parentKey crypto.Signer, tmpl x509.Certificate) (*x509.Certificate, crypto.Signer) {
	p.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl.SerialNumber = serial
	tmpl.Subject = pkix.Name{Organization: []string{"test"}}
	tmpl.BasicConstraintsValid = true
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(time.Hour)
	}
	if parent == nil {
		parent, parentKey = &tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, parent, key.Public(), parentKey)
	if err != nil {
		p.t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		p.t.Fatal(err)
	}
	return c, key
}

// leaf is a workload certificate for id, signed by the root unless by is given.
func (p *pki) leaf(id identity.Identity, tmpl x509.Certificate, by ...*x509.Certificate) ([]*x509.Certificate, crypto.Signer) {
	u, _ := url.Parse(id.String())
	tmpl.URIs = []*url.URL{u}
	if tmpl.ExtKeyUsage == nil {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	tmpl.KeyUsage |= x509.KeyUsageDigitalSignature
	parent, parentKey := p.root, p.key
	chain := []*x509.Certificate{}
	if len(by) > 0 {
		parent, parentKey = by[0], p.interKey
	}
	c, key := p.issue(parent, parentKey, tmpl)
	chain = append(chain, c)
	if len(by) > 0 {
		chain = append(chain, by[0])
	}
	return chain, key
}

// serverCert is a good certificate of httpbin under this PKI, for the server side.
func (p *pki) serverCert() *identity.Cert {
	chain, key := p.leaf(httpbinID, x509.Certificate{})
	return p.cert(httpbinID, chain, key, time.Now())
}

func (p *pki) cert(id identity.Identity, chain []*x509.Certificate, key crypto.Signer, at time.Time) *identity.Cert {
	p.t.Helper()
	var pems []string
	for _, c := range append(chain, p.root) {
		pems = append(pems, string(identity.EncodePEM(c)))
	}
	cert, err := identity.NewCert(id, key, pems, at)
	if err != nil {
		p.t.Fatal(err)
	}
	return cert
}

// clientConfig presents chain and key as the client's certificate, unverified by us.
func clientConfig(chain []*x509.Certificate, key crypto.Signer) *tls.Config {
	tc := tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, c := range chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, NextProtos: []string{"h2"},
		Certificates: []tls.Certificate{tc}, ClientSessionCache: tls.NewLRUClientSessionCache(4)}
}

// Certificates no CA of ours would issue are refused by the server whatever the client
// offers (catalogue BI-9, BI-10); a session cache on the client buys no resumption.
func TestBadClientCertificates(t *testing.T) {
	ztest.NoLeaks(t)
	p := newPKI(t, 1)
	srv := p.serverCert()
	inter, interKey := p.issue(p.root, p.key, x509.Certificate{IsCA: true, KeyUsage: x509.KeyUsageCertSign,
		MaxPathLen: 0, MaxPathLenZero: true})
	p.interKey = interKey
	expiredInter, expiredInterKey := p.issue(p.root, p.key, x509.Certificate{IsCA: true, KeyUsage: x509.KeyUsageCertSign,
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Second)})
	tooDeep, tooDeepKey := p.issue(inter, interKey, x509.Certificate{IsCA: true, KeyUsage: x509.KeyUsageCertSign})
	cases := map[string]func() ([]*x509.Certificate, crypto.Signer){
		"expired a second ago": func() ([]*x509.Certificate, crypto.Signer) {
			return p.leaf(sleepID, x509.Certificate{NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(-time.Second)})
		},
		"valid from a minute on": func() ([]*x509.Certificate, crypto.Signer) {
			return p.leaf(sleepID, x509.Certificate{NotBefore: time.Now().Add(time.Minute)})
		},
		"self-signed leaf": func() ([]*x509.Certificate, crypto.Signer) {
			other := newPKI(t, 0)
			c, k := other.issue(nil, nil, x509.Certificate{URIs: []*url.URL{{Scheme: "spiffe", Host: "cluster.local", Path: "/ns/foo/sa/sleep"}},
				ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature})
			return []*x509.Certificate{c}, k
		},
		"CA certificate as the leaf": func() ([]*x509.Certificate, crypto.Signer) {
			return p.leaf(sleepID, x509.Certificate{IsCA: true, KeyUsage: x509.KeyUsageCertSign})
		},
		"server-only key usage": func() ([]*x509.Certificate, crypto.Signer) {
			return p.leaf(sleepID, x509.Certificate{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		},
		"expired intermediate": func() ([]*x509.Certificate, crypto.Signer) {
			p.interKey = expiredInterKey
			defer func() { p.interKey = interKey }()
			return p.leaf(sleepID, x509.Certificate{}, expiredInter)
		},
		"path length exceeded": func() ([]*x509.Certificate, crypto.Signer) {
			p.interKey = tooDeepKey
			defer func() { p.interKey = interKey }()
			chain, key := p.leaf(sleepID, x509.Certificate{}, tooDeep)
			return append(chain, inter), key
		},
	}
	for name, make := range cases {
		t.Run(name, func(t *testing.T) {
			chain, key := make()
			cErr, sErr, _, resumed := handshake(t, srv, clientConfig(chain, key))
			if sErr == nil || cErr == nil {
				t.Errorf("accepted: server %v, client %v", sErr, cErr)
			}
			if resumed {
				t.Error("the session was resumed")
			}
		})
	}
	// A good client certificate under the same PKI is accepted, and never resumed.
	good, goodKey := p.leaf(sleepID, x509.Certificate{})
	cfg := clientConfig(good, goodKey)
	for i := range 2 {
		cErr, sErr, peer, resumed := handshake(t, srv, cfg)
		if cErr != nil || sErr != nil || peer != sleepID || resumed {
			t.Fatalf("good certificate, connection %d: client %v, server %v, peer %v, resumed %v", i, cErr, sErr, peer, resumed)
		}
	}
}

// A server presenting an expired certificate is refused by our client (catalogue BI-9,
// the other direction).
func TestExpiredServerCertificateRefused(t *testing.T) {
	ztest.NoLeaks(t)
	p := newPKI(t, 1)
	chain, key := p.leaf(httpbinID, x509.Certificate{NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(-time.Second)})
	srv := p.cert(httpbinID, chain, key, time.Now().Add(-time.Minute)) // was valid a minute ago
	clientChain, clientKey := p.leaf(sleepID, x509.Certificate{})
	client := p.cert(sleepID, clientChain, clientKey, time.Now())
	cErr, _, _, _ := handshake(t, srv, mtls.ClientConfig(nil, client, []identity.Identity{httpbinID}))
	if !matches(cErr, errors.New("verifying")) {
		t.Errorf("client error %v, want the expired server refused", cErr)
	}
}
