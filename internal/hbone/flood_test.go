package hbone_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// errorCounts records what Settings.CountError hears.
type errorCounts struct {
	mu sync.Mutex
	m  map[string]int
}

func (e *errorCounts) add(scope, code, _ string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]int{}
	}
	e.m[scope+"/"+code]++
}

func (e *errorCounts) get(scope, code string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.m[scope+"/"+code]
}

func (e *errorCounts) reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m = nil
}

func (e *errorCounts) snapshot() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.m)
}

// Protocol violations end the connection with the GOAWAY code RFC 9113 names, and the
// server's connection (and every goroutine of it) goes away (catalogue BI-1, LD-4).
func TestProtocolViolationsEndTheConnection(t *testing.T) {
	ztest.NoLeaks(t)
	cases := []struct {
		name string
		send func(p *h2peer)
		want http2.ErrCode
	}{
		{"DATA on stream 0", func(p *h2peer) {
			p.fr.WriteData(0, false, []byte("x"))
		}, http2.ErrCodeProtocol},
		{"HEADERS on an even stream", func(p *h2peer) { p.connect(2) }, http2.ErrCodeProtocol},
		{"stream id going backwards", func(p *h2peer) { p.connect(5); p.connect(3) }, http2.ErrCodeProtocol},
		{"window over 2^31-1", func(p *h2peer) {
			p.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31})
		}, http2.ErrCodeFlowControl},
		{"frame larger than our maximum", func(p *h2peer) {
			p.connect(1)
			p.fr.WriteData(1, false, make([]byte, 32<<10))
		}, http2.ErrCodeFrameSize},
		{"PUSH_PROMISE from a client", func(p *h2peer) {
			p.connect(1)
			p.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: p.block("x:1"), EndHeaders: true})
		}, http2.ErrCodeProtocol},
		{"CONTINUATION without HEADERS", func(p *h2peer) { p.fr.WriteContinuation(1, true, p.block("x:1")) }, http2.ErrCodeProtocol},
		{"DATA beyond the stream window", func(p *h2peer) {
			p.connect(1)
			for range 5 {
				p.fr.WriteData(1, false, make([]byte, 16384))
			}
		}, http2.ErrCodeFlowControl},
		{"empty DATA flood", func(p *h2peer) {
			p.connect(1)
			for range 101 { // one past the limit, and nothing unread after it
				p.fr.WriteData(1, false, nil)
			}
		}, http2.ErrCodeEnhanceYourCalm},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ztest.NoLeaks(t)
			counted := &errorCounts{}
			p := dialRaw(t, hbone.Settings{StreamWindow: 65535, MaxFrameSize: 16384, CountError: counted.add}, func(s *hbone.Stream) {
				s.Respond(200)
				// Never reads: the window test counts on the bytes staying queued.
				<-s.Conn().Done()
			})
			tc.send(p)
			if got := p.goAway(); got != tc.want {
				t.Errorf("GOAWAY %v, want %v", got, tc.want)
			}
			if err := p.serverEnded(); err == nil {
				t.Error("server connection ended without an error")
			}
			if n := counted.get("connection", tc.want.String()); n != 1 {
				t.Errorf("CountError heard connection/%v %d times, want once", tc.want, n)
			}
		})
	}
}

// Rapid Reset (CVE-2023-44487): HEADERS + RST_STREAM at line rate. Handlers of reset
// streams still count against MaxStreams, and the connection is closed once the reset
// budget is spent, long before the attacker's loop ends (catalogue LD-3).
func TestRapidResetIsBoundedAndClosed(t *testing.T) {
	ztest.NoLeaks(t)
	const maxStreams = 20
	var running, peak atomic.Int32
	release := make(chan struct{})
	counted := &errorCounts{}
	p := dialRaw(t, hbone.Settings{MaxStreams: maxStreams, CountError: counted.add}, func(s *hbone.Stream) {
		n := running.Add(1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		<-release // a slow upstream dial
		running.Add(-1)
	})
	sent := 0
	for id := uint32(1); id < 20000; id += 2 {
		if p.connect(id) != nil || p.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
			break
		}
		sent++
	}
	close(release)
	p.flooded()
	if got := peak.Load(); got > maxStreams {
		t.Errorf("%d handlers ran at once, want at most MaxStreams=%d", got, maxStreams)
	}
	if counted.get("connection", "ENHANCE_YOUR_CALM") != 1 || counted.get("stream", "REFUSED_STREAM") == 0 {
		t.Errorf("CountError heard %v, want the flood and the refused streams", counted.snapshot())
	}
	t.Logf("attacker got %d HEADERS+RST pairs written before the server hung up", sent)
}

// Streams beyond MaxStreams are refused one by one (REFUSED_STREAM, safe to retry),
// without ending the connection when the client is not abusive.
func TestExcessStreamsRefused(t *testing.T) {
	ztest.NoLeaks(t)
	p := dialRaw(t, hbone.Settings{MaxStreams: 3}, func(s *hbone.Stream) {
		s.Respond(200)
		<-s.Conn().Done()
	})
	for id := uint32(1); id <= 9; id += 2 {
		p.connect(id)
	}
	refused := map[uint32]bool{}
	p.await(func(f http2.Frame) bool {
		if r, ok := f.(*http2.RSTStreamFrame); ok && r.ErrCode == http2.ErrCodeRefusedStream {
			refused[r.StreamID] = true
		}
		return len(refused) == 2
	})
	if !refused[7] || !refused[9] {
		t.Errorf("refused %v, want streams 7 and 9", refused)
	}
}

// A header list over the limit is answered 431 on its own stream; it is decoded only
// up to the limit (catalogue BI-5). One field longer than the whole limit is a
// compression error that ends the connection: the decoder never holds it.
func TestOversizedHeaders(t *testing.T) {
	ztest.NoLeaks(t)
	p := dialRaw(t, hbone.Settings{}, func(s *hbone.Stream) { s.Respond(200) })
	p.connect(1, "x-one-huge-field", strings.Repeat("a", 70<<10))
	if got := p.goAway(); got != http2.ErrCodeCompression {
		t.Errorf("one 70 KiB field: GOAWAY %v, want COMPRESSION_ERROR", got)
	}

	p = dialRaw(t, hbone.Settings{}, func(s *hbone.Stream) { s.Respond(200) })
	var many []string
	for i := range 20 {
		many = append(many, fmt.Sprintf("x-field-%d", i), strings.Repeat("a", 4<<10))
	}
	p.connect(1, many...)
	p.connect(3)
	status := map[uint32]string{}
	p.await(func(f http2.Frame) bool {
		if h, ok := f.(*http2.MetaHeadersFrame); ok {
			status[h.StreamID] = h.PseudoValue("status")
		}
		return len(status) == 2
	})
	if status[1] != "431" || status[3] != "200" {
		t.Errorf("statuses %v, want 1:431 and 3:200", status)
	}
}

// CONTINUATION flood (CVE-2023-45288): endless CONTINUATION frames after HEADERS without
// END_HEADERS. The connection ends after a bounded number of excess header bytes
// (catalogue BI-6).
func TestContinuationFloodEndsConnection(t *testing.T) {
	ztest.NoLeaks(t)
	p := dialRaw(t, hbone.Settings{}, func(s *hbone.Stream) { s.Respond(200) })
	p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: p.block("10.0.0.1:80")})
	// Literal header fields without indexing, each one 16 KiB of value.
	frag := append([]byte{0x00, 0x01, 'x', 0x7f, 0x81, 0x7f}, bytes.Repeat([]byte{'a'}, 16<<10)...)
	var written int
	for range 1000 {
		if p.fr.WriteContinuation(1, false, frag) != nil {
			break
		}
		written += len(frag)
	}
	if err := p.serverEnded(); err == nil {
		t.Error("server connection ended without an error")
	}
	t.Logf("attacker wrote %d KiB of CONTINUATION before the write failed", written>>10)
}

// MadeYouReset (CVE-2025-8671): frames that make the server reset streams draw on the
// same budget as the client's own resets (catalogue LD-4).
func TestServerResetsAreBudgeted(t *testing.T) {
	ztest.NoLeaks(t)
	p := dialRaw(t, hbone.Settings{MaxStreams: 10}, func(s *hbone.Stream) { <-s.Conn().Done() })
	for id := uint32(1); id < 4000; id += 2 {
		// WINDOW_UPDATE with increment 0 is a stream error: the server resets the stream.
		p.connect(id)
		if p.fr.WriteWindowUpdate(id, 0) != nil {
			break
		}
	}
	p.flooded()
}

// A peer that floods PINGs and never reads the answers is dropped: its answers do not
// pile up, and the unanswerable keepalive PING ends the connection (catalogue LD-4,
// LD-5 f).
func TestPingFloodWithoutReadingEndsConnection(t *testing.T) {
	ztest.NoLeaks(t)
	p := dialRaw(t, hbone.Settings{PingInterval: 100 * time.Millisecond, PingTimeout: 300 * time.Millisecond},
		func(s *hbone.Stream) {})
	go func() {
		for range 500000 {
			if p.fr.WritePing(false, [8]byte{}) != nil {
				return
			}
		}
	}()
	err := p.serverEnded()
	if !errors.Is(err, hbone.ErrPingFailed) && !errors.Is(err, hbone.ErrFlood) {
		t.Errorf("server ended with %v, want a PING failure or flood", err)
	}
	p.nc.Close()
}

// A stream-level error is answered with RST_STREAM on that stream only; the others on
// the connection carry on (catalogue BI-1).
func TestStreamLevelErrorResetsOnlyThatStream(t *testing.T) {
	ztest.NoLeaks(t)
	p := dialRaw(t, hbone.Settings{}, echo)
	p.connect(1)
	p.connect(3)
	p.fr.WriteWindowUpdate(1, 0) // increment 0: a stream error (RFC 9113 §6.9)
	p.fr.WriteData(3, true, []byte("ping"))
	var reset http2.ErrCode
	var echoed []byte
	p.await(func(f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				reset = f.ErrCode
			}
		case *http2.DataFrame:
			if f.StreamID == 3 {
				echoed = append(echoed, f.Data()...)
			}
		}
		return reset != 0 && string(echoed) == "ping"
	})
	if reset != http2.ErrCodeProtocol || string(echoed) != "ping" {
		t.Errorf("stream 1 reset %v (want PROTOCOL_ERROR), stream 3 echoed %q (want ping)", reset, echoed)
	}
}

// The flood limits are settings: a tighter empty-DATA bound trips sooner, and a
// tighter reset budget sooner than MaxStreams would.
func TestFloodLimitsAreSettings(t *testing.T) {
	ztest.NoLeaks(t)
	p := dialRaw(t, hbone.Settings{MaxEmptyData: 3}, func(s *hbone.Stream) { <-s.Conn().Done() })
	p.connect(1)
	for range 4 {
		p.fr.WriteData(1, false, nil)
	}
	if got := p.goAway(); got != http2.ErrCodeEnhanceYourCalm {
		t.Errorf("4 empty DATA frames past a bound of 3: GOAWAY %v, want ENHANCE_YOUR_CALM", got)
	}
	p = dialRaw(t, hbone.Settings{ResetsPerSecond: 2}, func(s *hbone.Stream) { <-s.Conn().Done() })
	for id := uint32(1); id <= 7; id += 2 { // four early resets in well under a second
		p.connect(id)
		p.fr.WriteRSTStream(id, http2.ErrCodeCancel)
	}
	p.flooded()
}
