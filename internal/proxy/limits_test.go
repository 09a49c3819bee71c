package proxy_test

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/proxy"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// Past MAX_CONNECTIONS a new connection is refused at once: a RST at accept, or 503 for
// an HBONE stream, and the connections already held keep working (catalogue FT-10).
func TestConnectionCapRefusesAtOnce(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t, func(o *proxy.Options) { o.MaxConnections = 3 })
	// Node B holds the TLS connection and two tunnels' streams: 3 of 3.
	held := make([]*net.TCPConn, 2)
	for i := range held {
		c, code := b.socks(t, sleepIP, "127.0.11.1:9000")
		if code != 0 {
			t.Fatalf("tunnel %d: SOCKS5 reply %d", i, code)
		}
		defer c.Close()
		held[i] = c
	}
	if c, code := b.socks(t, sleepIP, "127.0.11.1:9000"); code == 0 {
		c.Close()
		t.Fatal("a fourth connection on node B was carried past MAX_CONNECTIONS=3")
	} else {
		c.Close()
	}
	ztest.Eventually(t, "node B logs the refusal", func() bool {
		return strings.Contains(b.b.logs.String(), "MAX_CONNECTIONS")
	})

	// Node A holds the two SOCKS5 connections; a silent one fills its cap once the
	// refused tunnel's slot is back, and the next is over it.
	var silent net.Conn
	ztest.Eventually(t, "node A takes a third connection", func() bool {
		c, err := net.Dial("tcp", b.a.socks.String())
		if err != nil {
			return false
		}
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
			silent = c
			return true
		}
		c.Close()
		return false
	})
	defer silent.Close()
	// The reset can beat the dial's own completion check: either is the refusal.
	over, err := net.Dial("tcp", b.a.socks.String())
	if err == nil {
		defer over.Close()
		over.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = over.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("connection over node A's cap: %v, want a reset at once", err)
	}
	for i, c := range held {
		c.Write([]byte("ok"))
		buf := make([]byte, 2)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ok" {
			t.Errorf("held tunnel %d after the refusals: %q, %v", i, buf, err)
		}
	}
}

// CONNECTION_IDLE_TIMEOUT ends a tunnel that carries nothing, and not one that talks.
func TestIdleTunnelClosed(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t, func(o *proxy.Options) { o.Timeouts.Idle = 400 * time.Millisecond })
	busy, code := b.socks(t, sleepIP, "127.0.11.1:9000")
	if code != 0 {
		t.Fatalf("SOCKS5 reply %d", code)
	}
	defer busy.Close()
	idle, _ := b.socks(t, sleepIP, "127.0.11.1:9000")
	defer idle.Close()
	buf := make([]byte, 1)
	for range 12 { // 1.2 s of a byte every 100 ms
		busy.Write([]byte("x"))
		if _, err := io.ReadFull(busy, buf); err != nil {
			t.Fatalf("the talking tunnel was closed: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(buf); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("silent tunnel: read %v, want it closed", err)
	}
	ztest.Eventually(t, "an access log names the idle timeout", func() bool {
		return strings.Contains(b.a.logs.String()+b.b.logs.String(), "CONNECTION_IDLE_TIMEOUT")
	})
}

// HALF_CLOSED_TIMEOUT ends a tunnel whose app said bye (FIN) while the client stays
// silent and never closes: the leak of istio/ztunnel#1629 (catalogue LD-5 e).
func TestHalfClosedTunnelClosed(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t, func(o *proxy.Options) { o.Timeouts.HalfClosed = 300 * time.Millisecond })
	c, code := b.socks(t, sleepIP, "127.0.11.1:9005")
	if code != 0 {
		t.Fatalf("SOCKS5 reply %d", code)
	}
	defer c.Close()
	if got, err := io.ReadAll(c); err != nil || string(got) != "bye" {
		t.Fatalf("app said %q, %v", got, err)
	}
	ztest.Eventually(t, "the silent half-closed tunnel is ended and logged", func() bool {
		return strings.Contains(b.a.logs.String(), "HALF_CLOSED_TIMEOUT")
	})
}

// A client that connects to 15008 and says nothing, or stops after TLS without the
// HTTP/2 preface, is dropped after TLS_HANDSHAKE_TIMEOUT (catalogue LD-5 a-c).
func TestSilentClientsDroppedAfterHandshakeTimeout(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t, func(o *proxy.Options) { o.Timeouts.Handshake = 300 * time.Millisecond })
	cases := map[string][]byte{
		"nothing":            nil,
		"half a ClientHello": {0x16, 0x03, 0x01, 0x02, 0x00, 0x01},
	}
	for name, send := range cases {
		c, err := net.Dial("tcp", b.addrs("127.0.11.1")[0].String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write(send)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadAll(c)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s: still open after 5 s, want closed after 300 ms", name)
		}
		c.Close()
	}
	ztest.Eventually(t, "both timeouts counted", func() bool {
		return ztest.MetricValue(t, b.b.metrics, "ztunnel_hbone_handshake_failures_total", map[string]string{"reason": "timeout"}) == 2
	})
}
