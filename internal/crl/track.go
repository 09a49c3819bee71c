package crl

import (
	"crypto/x509"
	"time"
)

// Peer is what an open connection's handshake proved, kept to judge it again.
type Peer struct {
	Certs    []*x509.Certificate // as presented, leaf first
	Roots    *x509.CertPool      // the roots it was verified against
	Usage    x509.ExtKeyUsage    // ServerAuth for a server ztunnel dialed, ClientAuth for a client
	Reporter string              // "source" (ztunnel dialed) or "destination" (it accepted)
}

type tracked struct {
	peer        Peer
	established time.Time
	revoke      func()
}

// Track keeps an open connection under the CRLs: when a set that revokes its peer comes
// into force, revoke is called once (it closes the connection) and the rejection is
// counted and logged. gen is Generation as it was before the handshake; a set loaded
// since is applied now. The returned untrack must be called when the connection ends.
func (m *Manager) Track(gen uint64, p Peer, revoke func()) (untrack func()) {
	if m == nil {
		return func() {}
	}
	if len(p.Certs) == 0 {
		m.opts.Metrics.Untracked(p.Reporter)
		m.log.Warn("peer presented no certificate: connection not tracked for CRL enforcement")
		return func() {}
	}
	t := &tracked{peer: p, established: time.Now(), revoke: revoke}
	m.mu.Lock()
	m.tracked[t] = struct{}{}
	m.mu.Unlock()
	if m.gen.Load() != gen {
		m.judge(m.set.Load(), t)
	}
	return func() {
		m.mu.Lock()
		delete(m.tracked, t)
		m.mu.Unlock()
	}
}

// rejudge applies a new set to every open connection.
func (m *Manager) rejudge(s *Set) {
	m.mu.Lock()
	all := make([]*tracked, 0, len(m.tracked))
	for t := range m.tracked {
		all = append(all, t)
	}
	m.mu.Unlock()
	for _, t := range all {
		m.judge(s, t)
	}
}

// judge closes t if s revokes its peer. The chain is rebuilt as at the handshake, at the
// time the connection was established, so a certificate that expired since is not
// mistaken for a revoked one (Rust: verify at `established`).
func (m *Manager) judge(s *Set, t *tracked) {
	p := t.peer
	inter := x509.NewCertPool()
	for _, c := range p.Certs[1:] {
		inter.AddCert(c)
	}
	chains, err := p.Certs[0].Verify(x509.VerifyOptions{Roots: p.Roots, Intermediates: inter,
		CurrentTime: t.established, KeyUsages: []x509.ExtKeyUsage{p.Usage}})
	if err != nil {
		m.opts.Metrics.Untracked(p.Reporter)
		m.log.Warn("re-verifying an open connection's peer failed: not judged by the new CRL", "error", err)
		return
	}
	err = s.CheckChains(chains)
	if err == nil {
		return
	}
	m.mu.Lock()
	_, open := m.tracked[t]
	delete(m.tracked, t)
	m.mu.Unlock()
	if !open {
		return
	}
	m.opts.Metrics.Rejected(p.Reporter)
	m.log.Warn("connection closed: the peer's certificate was revoked", "peer", describe(p.Certs[0]),
		"reporter", p.Reporter, "error", err)
	t.revoke()
}
