package proxy_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/ca"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/mtls"
)

// BenchmarkTunnelUpload carries 64 KiB writes from a client to a sink app, end to end
// in one process: "hbone" through both proxies (SOCKS5 on node A, HBONE over TLS on
// loopback, node B dialing the app), "mtls-pipe" over one TLS connection on loopback
// copied to the sink by io.Copy, the baseline of the same run. Compare their MB/s as a
// ratio; bench/run measures the real thing (separate processes, network namespaces).
// "double-hbone" goes through the test kit's east-west gateway: TLS inside TLS.
func BenchmarkTunnelUpload(b *testing.B) {
	b.Run("hbone", func(b *testing.B) { upload(b, tunnelTo(b, "127.0.11.1:9001")) })
	b.Run("double-hbone", func(b *testing.B) { upload(b, doubleTo(b, remoteVIP+":9001")) })
	b.Run("mtls-pipe", func(b *testing.B) {
		upload(b, mtlsPipe(b, func(tc net.Conn) { n, _ := drain(tc); tc.Write([]byte{byte(n)}) }))
	})
}

// BenchmarkTunnelPingPong is 64 B request/response round trips on one tunnel to the
// echo app: the small-message path, where every hand-off between goroutines is a
// scheduler wake-up. "mtls-pipe" echoes over one TLS connection, the same run's baseline.
func BenchmarkTunnelPingPong(b *testing.B) {
	b.Run("hbone", func(b *testing.B) { pingPong(b, tunnelTo(b, "127.0.11.1:9000")) })
	b.Run("double-hbone", func(b *testing.B) { pingPong(b, doubleTo(b, remoteVIP+":9000")) })
	b.Run("mtls-pipe", func(b *testing.B) { pingPong(b, mtlsPipe(b, func(tc net.Conn) { io.Copy(tc, tc) })) })
}

func pingPong(b *testing.B, c net.Conn) {
	defer c.Close()
	msg := make([]byte, 64)
	b.ReportAllocs()
	before := rwSyscalls()
	for b.Loop() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, msg); err != nil {
			b.Fatal(err)
		}
	}
	if n := rwSyscalls() - before; before >= 0 {
		b.ReportMetric(float64(n)/float64(b.N), "rw-syscalls/op")
	}
}

// rwSyscalls is the process's count of read(2)- and write(2)-family calls so far
// (/proc/self/io syscr + syscw), -1 where the kernel does not keep it. Both proxies,
// the app and the benchmark's client are in this process, for the hbone runs and the
// pipe's alike, so their counts compare.
func rwSyscalls() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	var total int64
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok && (k == "syscr" || k == "syscw") {
			n, _ := strconv.ParseInt(v, 10, 64)
			total += n
		}
	}
	return total
}

// upload writes b.N chunks of 64 KiB, half-closes and waits for the sink's count.
func upload(b *testing.B, c net.Conn) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	before := rwSyscalls()
	for b.Loop() {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	io.Copy(io.Discard, c)
	if n := rwSyscalls() - before; before >= 0 {
		b.ReportMetric(float64(n)/(float64(b.N)*float64(len(buf))/(1<<20)), "rw-syscalls/MiB")
	}
}

// mtlsPipe is a client's TLS connection to a loopback server that runs serve on its
// end, with the mesh's certificates and TLS settings.
func mtlsPipe(b *testing.B, serve func(net.Conn)) net.Conn {
	b.Helper()
	root, err := ca.New("cluster.local", time.Hour, nil)
	if err != nil {
		b.Fatal(err)
	}
	id := identity.New("cluster.local", "default", "echo")
	cert, err := root.Fetch(context.Background(), id)
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	b.Cleanup(func() { l.Close(); <-done })
	go func() {
		defer close(done)
		nc, err := l.Accept()
		if err != nil {
			return
		}
		tc := tls.Server(nc, mtls.ServerConfig(nil, func(context.Context, net.Addr) (*identity.Cert, error) { return cert, nil }))
		serve(tc)
		tc.Close()
	}()
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	tc := tls.Client(nc, mtls.ClientConfig(nil, cert, []identity.Identity{id}))
	if err := tc.Handshake(); err != nil {
		b.Fatal(err)
	}
	return tc
}

// tunnelTo is a client's connection through the bed's two proxies to an app of node B.
func tunnelTo(b *testing.B, target string) net.Conn {
	c, code := newBed(b).socks(b, sleepIP, target)
	if code != 0 {
		b.Fatalf("SOCKS5 reply %d", code)
	}
	return c
}

// doubleTo is tunnelTo through the bed's east-west gateway (double HBONE).
func doubleTo(b *testing.B, target string) net.Conn {
	bed := newBed(b)
	bed.throughGateway(b)
	c, code := bed.socks(b, sleepIP, target)
	if code != 0 {
		b.Fatalf("SOCKS5 reply %d", code)
	}
	return c
}
