package hbone_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/version"
	"io"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// FT-8: the peer dies under 100 multiplexed streams. Every stream fails promptly (not
// at its own deadline), and the connection reports itself unusable for the pool.
func TestPeerDeathFailsEveryStream(t *testing.T) {
	ztest.NoLeaks(t)
	var mu sync.Mutex
	var server []*hbone.Stream
	c := pair(t, hbone.Settings{}, func(s *hbone.Stream) {
		s.Respond(200)
		mu.Lock()
		server = append(server, s)
		mu.Unlock()
		<-s.Conn().Done()
	})
	var streams []*hbone.Stream
	for range 100 {
		s, err := open(t, c, "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	mu.Lock()
	server[0].Conn().Close() // the peer's process is gone: its socket closes
	mu.Unlock()
	var wg sync.WaitGroup
	for i, s := range streams {
		wg.Go(func() {
			s.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadAll(s); err == nil || errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("stream %d: read %v after the peer died, want the connection's failure", i, err)
			}
		})
	}
	wg.Wait()
	if c.Usable() {
		t.Error("a dead connection still reports itself usable")
	}
}

// FT-8 (c), LD-5 (d, f): a peer that goes silent (packets dropped, a HEADERS never
// finished, a receive window never opened) cannot answer PINGs, and the connection
// ends after PingTimeout instead of holding its goroutines forever.
func TestSilentPeerEndedByPing(t *testing.T) {
	ping := hbone.Settings{PingInterval: 100 * time.Millisecond, PingTimeout: 300 * time.Millisecond}
	cases := map[string]func(p *h2peer){
		"says nothing after the preface": func(p *h2peer) {},
		"HEADERS without END_HEADERS, then silence": func(p *h2peer) {
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: p.block("10.0.0.1:80")})
		},
		"opens a stream and never reads": func(p *h2peer) { p.connect(1) },
	}
	for name, act := range cases {
		t.Run(name, func(t *testing.T) {
			ztest.NoLeaks(t)
			p := dialRaw(t, ping, func(s *hbone.Stream) {
				s.Respond(200)
				s.Write(make([]byte, 1<<20)) // blocks on the window the peer never opens
			})
			act(p)
			if err := p.serverEnded(); !errors.Is(err, hbone.ErrPingFailed) {
				t.Errorf("server connection ended with %v, want %v", err, hbone.ErrPingFailed)
			}
		})
	}
}

// LD-6: one stream whose reader stopped holds at most its stream window; the others on
// the same connection still move their bytes (the connection window is 4× a stream's).
func TestStalledStreamDoesNotBlockOthers(t *testing.T) {
	ztest.NoLeaks(t)
	const size = 8 << 20
	c := pair(t, hbone.Settings{StreamWindow: 1 << 20, ConnWindow: 4 << 20}, func(s *hbone.Stream) {
		s.Respond(200)
		if s.Request().Authority == "10.0.0.9:1" {
			s.Write(make([]byte, 4<<20)) // fills the stalled stream's window, then blocks
			<-s.Conn().Done()
			return
		}
		s.Write(bytes.Repeat([]byte{'x'}, size))
		s.CloseWrite()
	})
	stalled, err := open(t, c, "10.0.0.9:1")
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	var wg sync.WaitGroup
	for i := range 9 {
		wg.Go(func() {
			s, err := open(t, c, "10.0.0.1:1")
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			s.SetReadDeadline(time.Now().Add(30 * time.Second))
			if n, err := io.Copy(io.Discard, s); n != size || err != nil {
				t.Errorf("stream %d: %d of %d bytes, %v", i, n, size, err)
			}
		})
	}
	wg.Wait()
}

// BI-5 (c): HPACK amplification. A 4 KiB header put in the dynamic table and then
// referenced by index 300 times is 1.2 MB decoded from 5 KB on the wire; the limit is
// on the decoded size, so the request is answered 431 and nothing else breaks.
func TestHPACKAmplificationAnswered431(t *testing.T) {
	ztest.NoLeaks(t)
	p := dialRaw(t, hbone.Settings{}, func(s *hbone.Stream) { s.Respond(200) })
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	enc.WriteField(hpack.HeaderField{Name: ":method", Value: "CONNECT"})
	enc.WriteField(hpack.HeaderField{Name: ":authority", Value: "10.0.0.1:80"})
	enc.WriteField(hpack.HeaderField{Name: "x-big", Value: strings.Repeat("a", 4000)}) // indexed: dynamic entry 62
	for range 300 {
		block.WriteByte(0x80 | 62) // indexed header field, dynamic table index 62
	}
	p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true})
	f := p.await(func(f http2.Frame) bool { _, ok := f.(*http2.MetaHeadersFrame); return ok })
	if h, ok := f.(*http2.MetaHeadersFrame); !ok || h.PseudoValue("status") != "431" {
		t.Errorf("answer %v, want :status 431", f)
	}
}

// BI-5 (d): a storm of SETTINGS changing the header table size leaves the connection
// serving: each is acknowledged and applied.
func TestSettingsStormKeepsServing(t *testing.T) {
	ztest.NoLeaks(t)
	p := dialRaw(t, hbone.Settings{}, func(s *hbone.Stream) { s.Respond(200) })
	go func() {
		for i := range 2000 {
			p.fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: uint32(i % 4096)})
		}
		p.connect(1)
	}()
	f := p.await(func(f http2.Frame) bool { _, ok := f.(*http2.MetaHeadersFrame); return ok })
	if h, ok := f.(*http2.MetaHeadersFrame); !ok || h.PseudoValue("status") != "200" {
		t.Errorf("after the storm: %v, want :status 200", f)
	}
}

// BI-6: the CONTINUATION-flood and Rapid Reset fixes live in x/net's framer (≥ v0.23.0)
// and the Go toolchain (≥ 1.22.2); an older build must fail here.
func TestToolchainHasHTTP2Fixes(t *testing.T) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("no build info")
	}
	if version.Compare(info.GoVersion, "go1.22.2") < 0 {
		t.Errorf("built with %s, want go1.22.2 or newer (CVE-2023-45288)", info.GoVersion)
	}
	for _, d := range info.Deps {
		if d.Path == "golang.org/x/net" && !atLeast(d.Version, 0, 23) {
			t.Errorf("golang.org/x/net %s, want v0.23.0 or newer (CVE-2023-45288)", d.Version)
		}
	}
}

// atLeast reports whether module version v (vMAJOR.MINOR.PATCH…) is at least major.minor.
func atLeast(v string, major, minor int) bool {
	var ma, mi int
	if _, err := fmt.Sscanf(v, "v%d.%d.", &ma, &mi); err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}
