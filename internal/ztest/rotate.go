package ztest

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// servingCert is a fake's TLS certificate, replaceable as istiod's is when the mesh
// root rotates.
type servingCert struct {
	cur  atomic.Pointer[tls.Certificate]
	next atomic.Pointer[tls.Certificate] // prepared by prepare, served from switchOver
}

func newServingCert(c tls.Certificate) *servingCert {
	s := &servingCert{}
	s.cur.Store(&c)
	return s
}

func (s *servingCert) config() *tls.Config {
	return &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cur.Load(), nil }}
}

// prepare makes the next certificate, from a new throwaway root, and returns the root's PEM.
func (s *servingCert) prepare(t testing.TB) string {
	t.Helper()
	c, pem, err := newServing()
	if err != nil {
		t.Fatal(err)
	}
	s.next.Store(&c)
	return pem
}

func (s *servingCert) switchOver() {
	if n := s.next.Swap(nil); n != nil {
		s.cur.Store(n)
	}
}

// connListener remembers the connections it accepted, so a fake can drop them all
// (istiod restarting) and go on serving.
type connListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (l *connListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		if l.conns == nil {
			l.conns = map[net.Conn]struct{}{}
		}
		l.conns[c] = struct{}{}
		l.mu.Unlock()
	}
	return c, err
}

func (l *connListener) dropAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.Close()
	}
	clear(l.conns)
}

// NextServing prepares the certificate istiod will serve after a root rotation and
// returns its new root's PEM, to publish to clients before SwitchServing.
func (f *FakeXDS) NextServing(t testing.TB) string { t.Helper(); return f.cert.prepare(t) }

// SwitchServing serves the prepared certificate and drops the open connections, as
// istiod restarting with its rotated certificate.
func (f *FakeXDS) SwitchServing() {
	f.cert.switchOver()
	f.lis.dropAll()
}

// NextServing is FakeXDS.NextServing for the CA.
func (f *FakeCA) NextServing(t testing.TB) string { t.Helper(); return f.cert.prepare(t) }

// SwitchServing is FakeXDS.SwitchServing for the CA: it restarts on the same address.
func (f *FakeCA) SwitchServing(t testing.TB) {
	t.Helper()
	f.cert.switchOver()
	f.Stop()
	f.Start(t)
}
