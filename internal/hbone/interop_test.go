package hbone_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// x/net's Transport, the HTTP/2 of Istio's Go HBONE client, passes our server's
// checks: its CONNECT is answered and its bytes come back, half-close included.
func TestXNetClientToOurServer(t *testing.T) {
	ztest.NoLeaks(t)
	addr := acceptOne(t, serveWith(hbone.Settings{}, echo))
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(context.Context, string, string, *tls.Config) (net.Conn, error) {
		return net.Dial("tcp", addr)
	}}
	defer tr.CloseIdleConnections()
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("CONNECT", "http://10.0.0.1:80", pr)
	req.Header.Set("baggage", "k8s.namespace.name=default")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	go func() { io.WriteString(pw, "hello over x/net"); pw.Close() }()
	got, err := io.ReadAll(resp.Body)
	if err != nil || string(got) != "hello over x/net" {
		t.Errorf("echoed %q, %v", got, err)
	}
}

// Our client's CONNECT passes x/net's http2.Server, which checks requests as RFC 9113
// §8 says, and the tunnel carries bytes both ways.
func TestOurClientToXNetServer(t *testing.T) {
	ztest.NoLeaks(t)
	addr := acceptOne(t, func(nc net.Conn) {
		(&http2.Server{IdleTimeout: 10 * time.Second}).ServeConn(nc, &http2.ServeConnOpts{Handler: http.HandlerFunc(
			func(w http.ResponseWriter, r *http.Request) {
				if r.Method != "CONNECT" || r.Host != "10.0.0.1:80" {
					w.WriteHeader(400)
					return
				}
				w.WriteHeader(200)
				w.(http.Flusher).Flush()
				b, _ := io.ReadAll(r.Body)
				w.Write([]byte(strings.ToUpper(string(b))))
			})})
	})
	var wg sync.WaitGroup
	defer wg.Wait()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := hbone.NewClientConn(nc, hbone.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { cc.Run() })
	defer cc.Close()
	st, err := open(t, cc, "10.0.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(st, "shout")
	st.CloseWrite()
	got, err := io.ReadAll(st)
	if err != nil || string(got) != "SHOUT" {
		t.Errorf("got %q, %v", got, err)
	}
	st.Close()
}

// acceptOne runs serve on the first connection to a loopback listener, whose address
// it returns; the test's cleanup joins it.
func acceptOne(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		nc, err := l.Accept()
		l.Close()
		if err == nil {
			serve(nc)
		}
	})
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return l.Addr().String()
}
