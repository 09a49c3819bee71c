package proxy_test

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// A flood of failing TLS handshakes on 15008 is counted in full, one by one, in
// ztunnel_hbone_handshake_failures_total, but writes only a few log lines a second:
// a peer cannot turn its sockets into log lines (issue 15's edge case).
func TestHandshakeFloodLogIsBounded(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	addr := b.addrs("127.0.11.1")[0].String()
	const n = 300
	start := time.Now()
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("\x16\x03\x01\x00\x05hello")) // a TLS record header, then garbage
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		c.Read(make([]byte, 64)) // the server's alert, or its close
		c.Close()
	}
	failures := func() float64 {
		return ztest.MetricValue(t, b.b.metrics, "ztunnel_hbone_handshake_failures_total", map[string]string{"reason": "tls"})
	}
	ztest.Eventually(t, "every failed handshake counted", func() bool { return failures() == n })
	elapsed := time.Since(start)

	var lines, suppressed int
	for _, l := range strings.Split(b.b.logs.String(), "\n") {
		if !strings.Contains(l, "inbound TLS handshake failed") {
			continue
		}
		lines++
		if m := regexp.MustCompile(`suppressed=(\d+)`).FindStringSubmatch(l); m != nil {
			k, _ := strconv.Atoi(m[1])
			suppressed += k
		}
	}
	// Five lines in each one-second window the flood touched.
	if limit := 5 * (int(elapsed/time.Second) + 2); lines == 0 || lines > limit {
		t.Errorf("%d handshake failures in %v wrote %d log lines, want 1 to %d", n, elapsed, lines, limit)
	}
	if lines+suppressed > n {
		t.Errorf("log lines (%d) and suppressed counts (%d) add up to more than the %d failures", lines, suppressed, n)
	}
	t.Logf("%d failed handshakes in %v: counted %v, %d log lines, %d reported suppressed", n, elapsed, failures(), lines, suppressed)
}

// HTTP/2 protocol errors on 15008 show in ztunnel_hbone_errors_total with their scope
// and code, and in the log with the peer and what it did.
func TestProtocolErrorsCountedAndLogged(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	for _, extra := range [][]string{{":path", "/"}, {"connection", "close"}, {"te", "gzip"}} {
		if got := b.rawCONNECT(t, connect("127.0.11.1:9006", extra...), nil); got != "RST PROTOCOL_ERROR" {
			t.Errorf("CONNECT with %s: %q, want RST PROTOCOL_ERROR", extra[0], got)
		}
	}
	errors := func() float64 {
		return ztest.MetricValue(t, b.b.metrics, "ztunnel_hbone_errors_total", map[string]string{"scope": "stream", "code": "PROTOCOL_ERROR"})
	}
	ztest.Eventually(t, "three stream errors counted", func() bool { return errors() == 3 })
	if !b.b.logs.WaitFor("HBONE protocol error") || !strings.Contains(b.b.logs.String(), "connection-specific header connection") {
		t.Errorf("no log line names the protocol error:\n%s", b.b.logs.String())
	}
}
