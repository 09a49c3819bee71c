package mtls_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ztunnel-go/ztunnel/internal/ca"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/mtls"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	sleepID   = identity.New("cluster.local", "foo", "sleep")
	httpbinID = identity.New("cluster.local", "default", "httpbin")
)

func issue(t *testing.T, c *ca.CA, id identity.Identity) *identity.Cert {
	t.Helper()
	cert, err := c.Fetch(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// handshake runs a server with srvCert and a client with cfg over loopback, and returns
// the client's error, the server's error and the identity the server saw.
func handshake(t *testing.T, srvCert *identity.Cert, cfg *tls.Config) (clientErr, serverErr error, peer identity.Identity, resumed bool) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	srvCfg := mtls.ServerConfig(nil, func(context.Context, net.Addr) (*identity.Cert, error) { return srvCert, nil })
	var wg sync.WaitGroup
	wg.Go(func() {
		nc, err := l.Accept()
		if err != nil {
			serverErr = err
			return
		}
		defer nc.Close()
		tc := tls.Server(nc, srvCfg)
		if serverErr = mtls.Handshake(context.Background(), tc, 0); serverErr == nil {
			peer, _ = mtls.PeerIdentity(tc.ConnectionState())
			tc.Write([]byte{1}) // let the client see the server's verdict
		}
	})
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(nc, cfg)
	clientErr = mtls.Handshake(context.Background(), tc, 0)
	if clientErr == nil {
		tc.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, clientErr = tc.Read(make([]byte, 1))
		resumed = tc.ConnectionState().DidResume
	}
	tc.Close()
	wg.Wait()
	return clientErr, serverErr, peer, resumed
}

func TestMutualTLS(t *testing.T) {
	ztest.NoLeaks(t)
	c, _ := ca.New("cluster.local", time.Hour, nil)
	client, server := issue(t, c, sleepID), issue(t, c, httpbinID)
	cfg := mtls.ClientConfig(nil, client, []identity.Identity{httpbinID})
	for i := range 2 { // the second connection must not resume the first
		cErr, sErr, peer, resumed := handshake(t, server, cfg)
		if cErr != nil || sErr != nil || peer != sleepID || resumed {
			t.Fatalf("connection %d: client %v, server %v, peer %v, resumed %v", i, cErr, sErr, peer, resumed)
		}
	}
}

func TestRefused(t *testing.T) {
	ztest.NoLeaks(t)
	c, _ := ca.New("cluster.local", time.Hour, nil)
	other, _ := ca.New("cluster.local", time.Hour, nil)
	client, server := issue(t, c, sleepID), issue(t, c, httpbinID)
	foreign := issue(t, c, identity.New("evil.local", "foo", "sleep"))
	tests := []struct {
		name       string
		server     *identity.Cert
		cfg        *tls.Config
		wantClient error
		wantServer error
	}{
		{"wrong server identity", server, mtls.ClientConfig(nil, client, []identity.Identity{sleepID}), mtls.ErrUnexpectedPeer, nil},
		{"client from another trust domain", server, mtls.ClientConfig(nil, foreign, []identity.Identity{httpbinID}), nil, mtls.ErrTrustDomain},
		{"server from an unknown CA", issue(t, other, httpbinID), mtls.ClientConfig(nil, client, []identity.Identity{httpbinID}), errors.New("verifying"), nil},
		{"client from an unknown CA", server, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13,
			Certificates: []tls.Certificate{issue(t, other, sleepID).TLS}}, nil, errors.New("verifying")},
		{"client without certificate", server, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}, nil, errors.New("certificate")},
		{"TLS 1.2 client", server, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, Certificates: []tls.Certificate{client.TLS}}, nil, errors.New("version")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cErr, sErr, _, _ := handshake(t, tt.server, tt.cfg)
			if cErr == nil && sErr == nil {
				t.Fatal("handshake succeeded")
			}
			if tt.wantClient != nil && !matches(cErr, tt.wantClient) {
				t.Errorf("client error = %v, want %v", cErr, tt.wantClient)
			}
			if tt.wantServer != nil && !matches(sErr, tt.wantServer) {
				t.Errorf("server error = %v, want %v", sErr, tt.wantServer)
			}
		})
	}
}

func matches(err, want error) bool {
	return err != nil && (errors.Is(err, want) || strings.Contains(err.Error(), want.Error()))
}
