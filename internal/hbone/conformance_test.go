package hbone_test

import (
	"io"
	"net"
	"testing"

	"golang.org/x/net/http2"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// The conformance tests: one row per MUST of RFC 9113 §4.2, §5.1, §6.1–§6.10, §8.1–§8.5
// (and RFC 7540 §5.3.1, whose self-dependency rule 9113 keeps), written from the RFC's
// text, each run against our server and our client unless the rule binds one role.
// A row prepares stream 1 in a state, lets the peer send what the rule is about, and
// says what our side must answer: a connection error (GOAWAY with the code and the
// last stream id, then the TCP connection closed), a stream error (RST_STREAM with the
// code, the connection still up), or nothing (accepted: the connection answers a PING
// and stream 1 is not reset). CountError must have heard exactly that.

type role uint8

const (
	bothRoles role = iota
	serverOnly
	clientOnly
)

// prep is the state stream 1 is put in before a row's frames, from our side's view.
type prep uint8

const (
	prepNone             prep = iota // server: nothing opened; client: stream 1 asked for, unanswered
	prepOpen                         // answered 200, open both ways
	prepHalfClosedRemote             // the peer sent END_STREAM
	prepClosed                       // END_STREAM both ways
	prepPeerReset                    // the peer sent RST_STREAM
	prepOurReset                     // we sent RST_STREAM
)

type want struct {
	conn   bool
	stream uint32
	code   http2.ErrCode
}

var accepted = want{}

func connErr(code http2.ErrCode) want { return want{conn: true, code: code} }

func streamErr(id uint32, code http2.ErrCode) want { return want{stream: id, code: code} }

type conformanceCase struct {
	rule     string // section: the requirement
	roles    role
	prep     prep
	settings func(*hbone.Settings) // changes to conformanceSettings, if any
	send     func(p *h2peer)
	want     want
}

// conformanceSettings keep frames and windows at the RFC's defaults, so that rows
// reach the limits with a few frames.
func conformanceSettings() hbone.Settings {
	return hbone.Settings{StreamWindow: 65535, ConnWindow: 65535, MaxFrameSize: 16384, MaxStreams: 100}
}

func runConformance(t *testing.T, cases []conformanceCase) {
	for _, tc := range cases {
		for _, server := range []bool{true, false} {
			if (server && tc.roles == clientOnly) || (!server && tc.roles == serverOnly) {
				continue
			}
			name := "client/" + tc.rule
			if server {
				name = "server/" + tc.rule
			}
			t.Run(name, func(t *testing.T) {
				ztest.NoLeaks(t)
				s := conformanceSettings()
				if tc.settings != nil {
					tc.settings(&s)
				}
				p := newPeer(t, server, s)
				p.prepare(tc.prep)
				tc.send(p)
				p.verify(tc.want)
			})
		}
	}
}

// prepare puts stream 1 in the state how names.
func (p *h2peer) prepare(how prep) {
	p.t.Helper()
	if how == prepNone {
		return
	}
	p.answer(how)
	switch how {
	case prepHalfClosedRemote:
		p.data(1, true, 0)
	case prepClosed:
		p.data(1, true, 0)
		if !p.server {
			st := <-p.stream
			io.Copy(io.Discard, st)
			st.CloseWrite()
		}
		p.await(func(f http2.Frame) bool {
			d, ok := f.(*http2.DataFrame)
			return ok && d.StreamID == 1 && d.StreamEnded()
		})
	case prepPeerReset:
		p.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	case prepOurReset:
		if !p.server {
			(<-p.stream).Close()
		}
		p.await(func(f http2.Frame) bool { r, ok := f.(*http2.RSTStreamFrame); return ok && r.StreamID == 1 })
	}
}

// answer opens stream 1 both ways: a CONNECT our server answers 200 (to the authority
// that makes its handler act as how needs), or a 200 to our client's CONNECT.
func (p *h2peer) answer(how prep) {
	if !p.server {
		p.headers(1, false, ":status", "200")
		return
	}
	authority := holdAuthority
	switch how {
	case prepClosed:
		authority = closeAuthority
	case prepOurReset:
		authority = resetAuthority
	}
	p.headers(1, false, ":method", "CONNECT", ":authority", authority)
	p.await(func(f http2.Frame) bool { h, ok := f.(*http2.MetaHeadersFrame); return ok && h.StreamID == 1 })
}

// verify checks what our side answered against w.
func (p *h2peer) verify(w want) {
	p.t.Helper()
	switch {
	case w.conn:
		p.verifyConnError(w.code)
	case w.stream != 0:
		f := p.await(func(f http2.Frame) bool {
			r, ok := f.(*http2.RSTStreamFrame)
			_, away := f.(*http2.GoAwayFrame)
			return away || ok && r.StreamID == w.stream
		})
		if r, ok := f.(*http2.RSTStreamFrame); !ok || r.ErrCode != w.code {
			p.t.Fatalf("want RST_STREAM %v on stream %d; got %v", w.code, w.stream, describe(f))
		}
		p.ping(0)
		if n := p.counted.get("stream", w.code.String()); n == 0 {
			p.t.Errorf("CountError did not hear stream/%v (heard %v)", w.code, p.counted.snapshot())
		}
	default:
		p.ping(1)
		if got := p.counted.snapshot(); len(got) > 0 {
			p.t.Errorf("CountError heard %v, want nothing", got)
		}
	}
}

// verifyConnError wants a GOAWAY with code naming the last stream the peer opened
// (§5.4.1, §6.8), then the TCP connection closed (§5.4.1: MUST close).
func (p *h2peer) verifyConnError(code http2.ErrCode) {
	p.t.Helper()
	f := p.await(func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok })
	g, ok := f.(*http2.GoAwayFrame)
	if !ok {
		p.t.Fatalf("want GOAWAY %v; got %v", code, describe(f))
	}
	if g.ErrCode != code || g.LastStreamID != p.opened {
		p.t.Errorf("GOAWAY %v, last stream %d; want %v, %d", g.ErrCode, g.LastStreamID, code, p.opened)
	}
	p.nc.(*net.TCPConn).CloseWrite() // ends our side's linger at once
	if f := p.await(func(http2.Frame) bool { return false }); f != nil {
		p.t.Errorf("connection still open after GOAWAY")
	}
	if err := <-p.ended; err == nil {
		p.t.Error("our connection ended without an error")
	}
	if n := p.counted.get("connection", code.String()); n != 1 {
		p.t.Errorf("CountError heard connection/%v %d times, want once (heard %v)", code, n, p.counted.snapshot())
	}
}
