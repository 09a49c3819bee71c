package proxy_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/mtls"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// rawCONNECT sends one hand-made request to node B over real mTLS as sleep, with data
// right behind its HEADERS (no wait for the answer), and returns the :status ("" when
// the stream or connection ended without one).
func (b *bed) rawCONNECT(t *testing.T, fields []hpack.HeaderField, data []byte) string {
	t.Helper()
	cert, err := b.ca.Fetch(context.Background(), sleepID)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", b.addrs("127.0.11.1")[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(nc, mtls.ClientConfig(nil, cert, []identity.Identity{echoID}))
	if err := mtls.Handshake(context.Background(), tc, 0); err != nil {
		t.Fatal(err)
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range fields {
		enc.WriteField(f)
	}
	fr := http2.NewFramer(tc, tc)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	tc.Write([]byte(http2.ClientPreface))
	fr.WriteSettings()
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true})
	if data != nil {
		fr.WriteData(1, true, data)
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return ""
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			return f.PseudoValue("status")
		case *http2.RSTStreamFrame:
			return "RST " + f.ErrCode.String()
		}
	}
}

func connect(authority string, extra ...string) []hpack.HeaderField {
	f := []hpack.HeaderField{{Name: ":method", Value: "CONNECT"}, {Name: ":authority", Value: authority}}
	for i := 0; i+1 < len(extra); i += 2 {
		f = append(f, hpack.HeaderField{Name: extra[i], Value: extra[i+1]})
	}
	return f
}

// Bad requests and authorities on 15008 are answered 400 (503 for a hostname no
// service has), and nothing is dialed for them: the app counts no connection
// (catalogue BI-1, BI-2, BI-3). A CONNECT that RFC 9113 §8.5 makes malformed is
// reset (PROTOCOL_ERROR) before any handler sees it, as Rust's h2 does: it has
// :scheme or :path, :protocol (extended CONNECT is not offered), or no :authority.
func TestBadConnectRequests(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	method := func(m string) []hpack.HeaderField {
		return []hpack.HeaderField{{Name: ":method", Value: m}, {Name: ":authority", Value: "127.0.11.1:9006"},
			{Name: ":scheme", Value: "https"}, {Name: ":path", Value: "/"}}
	}
	tests := []struct {
		name   string
		fields []hpack.HeaderField
		status string
	}{
		{"GET", method("GET"), "400"},
		{"POST", method("POST"), "400"},
		{"CONNECT with :path and :scheme", method("CONNECT"), "RST PROTOCOL_ERROR"},
		{"extended CONNECT", connect("127.0.11.1:9006", ":protocol", "websocket"), "RST PROTOCOL_ERROR"},
		{"no authority", []hpack.HeaderField{{Name: ":method", Value: "CONNECT"}}, "RST PROTOCOL_ERROR"},
		{"empty authority", connect(""), "RST PROTOCOL_ERROR"},
		{"connection-specific header", connect("127.0.11.1:9006", "connection", "close"), "RST PROTOCOL_ERROR"},
		{"host unlike :authority", connect("127.0.11.1:9006", "host", "127.0.11.2:9006"), "RST PROTOCOL_ERROR"},
		{"no port", connect("127.0.11.1"), "400"},
		{"no host", connect(":9006"), "400"},
		{"unclosed bracket", connect("[::1"), "400"},
		{"port out of range", connect("127.0.11.1:99999"), "400"},
		{"userinfo", connect("a@127.0.11.1:9006"), "400"},
		{"IPv6 zone", connect("[fe80::1%eth0]:9006"), "400"},
		{"hostname over 255 characters", connect(strings.Repeat("a", 300) + ":80"), "400"},
		{"percent-encoded", connect("%31%32%37.0.11.1:9006"), "400"},
		{"unicode", connect("ëcho.default.svc.cluster.local:80"), "400"},
		{"hostname no service has", connect("nosuch.default.svc.cluster.local:80"), "503"},
		{"another pod (open proxy)", connect("127.0.11.2:9006"), "400"},
		{"cloud metadata (SSRF)", connect("169.254.169.254:80"), "400"},
		{"ztunnel's admin port", connect("127.0.0.1:15000"), "400"},
		{"ztunnel's own HBONE port", connect("127.0.11.1:15008"), "503"},
	}
	before := countAccepts.Load()
	for _, tt := range tests {
		if got := b.rawCONNECT(t, tt.fields, nil); got != tt.status {
			t.Errorf("%s: status %q, want %s", tt.name, got, tt.status)
		}
	}
	if n := countAccepts.Load() - before; n != 0 {
		t.Errorf("the app was dialed %d times for refused requests", n)
	}
}

// A denied CONNECT with its data sent right behind the HEADERS (no wait for 200)
// delivers zero bytes: the app is dialed only after authorization (catalogue AZ-8).
func TestNoBytesBeforeAuthorization(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	b.b.apply(t, ztest.DenyFromNamespace("default", "deny-foo", "foo"))
	accepts, bytesIn := countAccepts.Load(), countBytes.Load()
	if got := b.rawCONNECT(t, connect("127.0.11.1:9006"), bytes.Repeat([]byte("smuggled"), 1000)); got != "401" {
		t.Errorf("denied CONNECT answered %q, want 401", got)
	}
	if n, m := countAccepts.Load()-accepts, countBytes.Load()-bytesIn; n != 0 || m != 0 {
		t.Errorf("denied request reached the app: %d connections, %d bytes", n, m)
	}
}

// Garbage, plaintext, h2c and downgraded TLS on 15008 end in the handshake, promptly
// (catalogue BI-7).
func TestGarbageOn15008(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	addr := b.addrs("127.0.11.1")[0].String()
	for name, send := range map[string]string{
		"random bytes":   "\x8f\x00\x13\x37garbage\xff\xfe",
		"plaintext HTTP": "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"h2c preface":    http2.ClientPreface,
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte(send))
		got, err := io.ReadAll(c)
		if errors.Is(err, os.ErrDeadlineExceeded) || bytes.Contains(got, []byte("HTTP")) {
			t.Errorf("%s: %q, %v; want the connection closed at once", name, got, err)
		}
		c.Close()
	}
	cert, _ := b.ca.Fetch(context.Background(), sleepID)
	for name, tweak := range map[string]func(*tls.Config){
		"TLS 1.2 only":  func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS12, tls.VersionTLS12 },
		"ALPN http/1.1": func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} },
		"no ALPN":       func(c *tls.Config) { c.NextProtos = nil },
	} {
		cfg := mtls.ClientConfig(nil, cert, []identity.Identity{echoID})
		tweak(cfg)
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		tc := tls.Client(nc, cfg)
		err = mtls.Handshake(context.Background(), tc, 5*time.Second)
		if err == nil { // TLS 1.3: a client learns of the server's refusal on its first read
			nc.SetDeadline(time.Now().Add(5 * time.Second))
			_, err = tc.Read(make([]byte, 1))
		}
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s: %v, want the handshake refused", name, err)
		}
		nc.Close()
	}
}

// Every byte arrives, in order, on every one of 100 tunnels sharing one HBONE
// connection, with 1-byte writes, and with connections that carry nothing
// (catalogue DI-1 b, c, d).
func TestEveryByteOnEveryTunnel(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	errs := make(chan error, 100)
	for i := range 100 {
		go func() {
			c, code := b.socks(t, sleepIP, "127.0.11.1:9000")
			if code != 0 {
				errs <- errors.New("SOCKS5 refused")
				return
			}
			defer c.Close()
			payload := bytes.Repeat([]byte{byte(i)}, 64<<10+i)
			go func() { c.Write(payload); c.CloseWrite() }()
			got, err := io.ReadAll(c)
			if err == nil && !bytes.Equal(got, payload) {
				err = errors.New("echo differs from what was sent")
			}
			errs <- err
		}()
	}
	for range 100 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	c, _ := b.socks(t, sleepIP, "127.0.11.1:9000")
	c.SetNoDelay(true)
	one := make([]byte, 1)
	for i := range 300 {
		c.Write([]byte{byte(i)})
		if _, err := io.ReadFull(c, one); err != nil || one[0] != byte(i) {
			t.Fatalf("1-byte write %d echoed %v, %v", i, one, err)
		}
	}
	c.Close()
	for range 20 {
		c, code := b.socks(t, sleepIP, "127.0.11.1:9000")
		if code != 0 {
			t.Fatalf("zero-byte connection: SOCKS5 %d", code)
		}
		c.CloseWrite()
		if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
			t.Errorf("zero-byte connection: %q, %v", rest, err)
		}
		c.Close()
	}
}

// The app sends 10 MiB and half-closes while the client is still uploading: the
// client reads the 10 MiB and EOF, and its whole upload still arrives (catalogue DI-3).
func TestUploadOutlivesServerFIN(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	c, code := b.socks(t, sleepIP, "127.0.11.1:9007")
	if code != 0 {
		t.Fatalf("SOCKS5 reply %d", code)
	}
	defer c.Close()
	const upload = 32 << 20
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(c, io.LimitReader(zeros{}, upload))
		c.CloseWrite()
		done <- err
	}()
	if n, err := io.Copy(io.Discard, c); n != 10<<20 || err != nil {
		t.Errorf("client read %d bytes (%v), want 10 MiB then EOF", n, err)
	}
	if err := <-done; err != nil {
		t.Errorf("upload after the server's FIN: %v", err)
	}
	if n := <-sunk; n != upload {
		t.Errorf("the app received %d of %d uploaded bytes", n, upload)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// An abort on one side is an abort on the other, never a clean FIN that would pass a
// truncated transfer for a complete one (catalogue DI-4).
func TestAbortIsNeverAFIN(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	// The app resets after 5 MiB: the client sees a reset.
	c, _ := b.socks(t, sleepIP, "127.0.11.1:9008")
	_, werr := io.Copy(c, io.LimitReader(zeros{}, 16<<20))
	_, rerr := io.ReadAll(c)
	if !errors.Is(werr, syscall.ECONNRESET) && !errors.Is(werr, syscall.EPIPE) && !errors.Is(rerr, syscall.ECONNRESET) {
		t.Errorf("after the app's reset: write %v, read %v; want a reset", werr, rerr)
	}
	c.Close()
	// The client resets after 5 MiB: the app sees a reset.
	c, _ = b.socks(t, sleepIP, "127.0.11.1:9009")
	io.Copy(c, io.LimitReader(zeros{}, 5<<20))
	c.SetLinger(0)
	c.Close()
	select {
	case end := <-ends:
		if end != "reset" {
			t.Errorf("after the client's reset the app saw %s, want a reset", end)
		}
	case <-time.After(10 * time.Second):
		t.Error("the app never saw the client's reset")
	}
	if !b.a.logs.WaitFor("connection failed") && !b.a.logs.WaitFor("error=") {
		t.Errorf("the access log does not record the abort:\n%s", b.a.logs)
	}
}
