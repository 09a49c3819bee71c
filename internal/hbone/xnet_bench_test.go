package hbone_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"

	"golang.org/x/net/http2"
)

// BenchmarkXNetStream is BenchmarkStream on x/net's http2.Server and Transport, with
// the same windows and frame size: the cost of the alternative to owning the HTTP/2
// state machine (issue 15, point 4). Plain TCP on both, as in BenchmarkStream.
func BenchmarkXNetStream(b *testing.B) {
	srv := &http2.Server{MaxReadFrameSize: 1 << 20, MaxUploadBufferPerStream: 4 << 20, MaxUploadBufferPerConnection: 16 << 20}
	done := make(chan struct{})
	addr := acceptOne(b, func(nc net.Conn) {
		srv.ServeConn(nc, &http2.ServeConnOpts{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			io.Copy(io.Discard, r.Body)
			close(done)
		})})
	})
	tr := &http2.Transport{AllowHTTP: true, MaxReadFrameSize: 1 << 20,
		DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) {
			return net.Dial("tcp", addr)
		}}
	pr, pw := io.Pipe()
	req, err := http.NewRequest("CONNECT", "http://10.0.0.1:80", pr)
	if err != nil {
		b.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		b.Fatal(err)
	}
	writeLoop(b, pw, 64<<10)
	pw.Close()
	<-done
	resp.Body.Close()
	tr.CloseIdleConnections()
}
