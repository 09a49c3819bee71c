package admin

import (
	"crypto/x509"
	"encoding/base64"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/certmgr"
	"github.com/ztunnel-go/ztunnel/internal/identity"
)

// Certificates is the certificate manager as the dump sees it.
type Certificates interface {
	Dump() []certmgr.Status
}

func (s *Server) certStatuses() []certmgr.Status {
	if s.deps.Certs == nil {
		return nil
	}
	return s.deps.Certs.Dump()
}

// certificatesJSON is the current layout: the chain TLS presents (leaf, intermediates)
// and the roots, each PEM base64-encoded as Rust ztunnel writes it.
func (s *Server) certificatesJSON() []CertificateJSON {
	out := []CertificateJSON{}
	for _, st := range s.certStatuses() {
		j := CertificateJSON{Identity: st.ID.String(), State: st.State, CertChain: []CertInfoJSON{}, RootCerts: []CertInfoJSON{}}
		if c := st.Cert; c != nil {
			for _, x := range append([]*x509.Certificate{c.Leaf}, c.Intermediates...) {
				j.CertChain = append(j.CertChain, certInfo(x, true))
			}
			for _, x := range c.Roots {
				j.RootCerts = append(j.RootCerts, certInfo(x, true))
			}
		}
		out = append(out, j)
	}
	return out
}

// certificates118 is 1.18's shape: ca_cert holds the workload's own (leaf) certificate
// and cert_chain the CA chain above it, with plain PEM, as the seed article shows.
func (s *Server) certificates118() []cert118 {
	out := []cert118{}
	for _, st := range s.certStatuses() {
		j := cert118{Identity: st.ID.String(), State: st.State, CACert: []certInfo118{}, CertChain: []certInfo118{}}
		if c := st.Cert; c != nil {
			j.CACert = append(j.CACert, certInfo118Of(c.Leaf))
			for _, x := range append(append([]*x509.Certificate{}, c.Intermediates...), c.Roots...) {
				j.CertChain = append(j.CertChain, certInfo118Of(x))
			}
		}
		out = append(out, j)
	}
	return out
}

func certInfo(c *x509.Certificate, b64 bool) CertInfoJSON {
	pem := string(identity.EncodePEM(c))
	if b64 {
		pem = base64.StdEncoding.EncodeToString([]byte(pem))
	}
	return CertInfoJSON{PEM: pem, SerialNumber: c.SerialNumber.String(),
		ValidFrom: c.NotBefore.UTC().Format(time.RFC3339), ExpirationTime: c.NotAfter.UTC().Format(time.RFC3339)}
}

func certInfo118Of(c *x509.Certificate) certInfo118 {
	j := certInfo(c, false)
	return certInfo118{PEM: j.PEM, SerialNumber: j.SerialNumber, ValidFrom: j.ValidFrom, ExpirationTime: j.ExpirationTime}
}
