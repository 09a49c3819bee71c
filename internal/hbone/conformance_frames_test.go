package hbone_test

import (
	"testing"

	"golang.org/x/net/http2"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
)

// RFC 9113 §4.2 (frame size) and §6.1–§6.10 (frame definitions).
func TestConformanceFrames(t *testing.T) {
	const (
		protocol  = http2.ErrCodeProtocol
		frameSize = http2.ErrCodeFrameSize
		flow      = http2.ErrCodeFlowControl
	)
	settings := func(ss ...http2.Setting) func(p *h2peer) {
		return func(p *h2peer) { p.fr.WriteSettings(ss...) }
	}
	runConformance(t, []conformanceCase{
		// §4.2: "An endpoint MUST send an error code of FRAME_SIZE_ERROR if a frame
		// exceeds the size defined in SETTINGS_MAX_FRAME_SIZE ... any frame carrying a
		// field block ... MUST be treated as a connection error."
		{rule: "4.2 DATA over SETTINGS_MAX_FRAME_SIZE", prep: prepOpen, send: func(p *h2peer) { p.data(1, false, 16385) }, want: connErr(frameSize)},
		{rule: "4.2 HEADERS over SETTINGS_MAX_FRAME_SIZE", send: func(p *h2peer) {
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, // not processed: GOAWAY names 0
				BlockFragment: p.encode(append(p.control(), "x-big", string(make([]byte, 16400)))...)})
		}, want: connErr(frameSize)},
		{rule: "4.2 a frame of 2^14 octets is accepted", prep: prepOpen, send: func(p *h2peer) { p.data(1, false, 16384) }, want: accepted},

		// §6.1 DATA.
		{rule: "6.1 DATA on stream 0", prep: prepOpen, send: func(p *h2peer) { p.raw(http2.FrameData, 0, 0, 'x') }, want: connErr(protocol)},
		{rule: "6.1 DATA with padding as long as its payload", prep: prepOpen, send: func(p *h2peer) {
			p.raw(http2.FrameData, http2.FlagDataPadded, 1, 4, 'a', 'b', 'c')
		}, want: connErr(protocol)},
		{rule: "6.1 padded DATA is accepted", prep: prepOpen, send: func(p *h2peer) {
			p.fr.WriteDataPadded(1, false, []byte("abc"), make([]byte, 10))
		}, want: accepted},

		// §6.2 HEADERS, §6.10 CONTINUATION.
		{rule: "6.2 HEADERS on stream 0", prep: prepOpen, send: func(p *h2peer) {
			p.raw(http2.FrameHeaders, http2.FlagHeadersEndHeaders, 0, p.encode(p.control()...)...)
		}, want: connErr(protocol)},
		{rule: "6.2 HEADERS with padding as long as its payload", prep: prepOpen, send: func(p *h2peer) {
			p.raw(http2.FrameHeaders, http2.FlagHeadersPadded|http2.FlagHeadersEndHeaders, 3, 9, 1, 2)
		}, want: connErr(protocol)},
		{rule: "6.2 HEADERS without END_HEADERS followed by another frame", prep: prepOpen, send: func(p *h2peer) {
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: p.encode(p.control()...)})
			p.data(1, false, 1)
		}, want: connErr(protocol)},
		{rule: "6.10 CONTINUATION of another stream's header block", prep: prepOpen, send: func(p *h2peer) {
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: p.encode(p.control()...)})
			p.fr.WriteContinuation(5, true, nil)
		}, want: connErr(protocol)},
		{rule: "6.10 CONTINUATION after END_HEADERS", prep: prepOpen, send: func(p *h2peer) {
			p.fr.WriteContinuation(1, true, p.encode("x-more", "1"))
		}, want: connErr(protocol)},
		{rule: "6.10 CONTINUATION on stream 0", prep: prepOpen, send: func(p *h2peer) {
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: p.encode(p.control()...)})
			p.raw(http2.FrameContinuation, http2.FlagContinuationEndHeaders, 0)
		}, want: connErr(protocol)},
		{rule: "6.10 a header block split over CONTINUATION is accepted", send: func(p *h2peer) {
			if p.server {
				p.opened = 1
			}
			block := p.encode(p.control()...)
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:1]})
			p.fr.WriteContinuation(1, true, block[1:])
			p.await(func(f http2.Frame) bool {
				h, ok := f.(*http2.MetaHeadersFrame)
				return ok && h.StreamID == 1 || !p.server
			})
		}, want: accepted},

		// §6.3 PRIORITY.
		{rule: "6.3 PRIORITY on stream 0", prep: prepOpen, send: func(p *h2peer) { p.raw(http2.FramePriority, 0, 0, 0, 0, 0, 1, 1) }, want: connErr(protocol)},
		{rule: "6.3 PRIORITY of 4 octets is a stream error", prep: prepOpen, send: func(p *h2peer) {
			p.raw(http2.FramePriority, 0, 1, 0, 0, 0, 3)
		}, want: streamErr(1, frameSize)},

		// §6.4 RST_STREAM.
		{rule: "6.4 RST_STREAM on stream 0", prep: prepOpen, send: func(p *h2peer) { p.raw(http2.FrameRSTStream, 0, 0, 0, 0, 0, 8) }, want: connErr(protocol)},
		{rule: "6.4 RST_STREAM of 3 octets", prep: prepOpen, send: func(p *h2peer) { p.raw(http2.FrameRSTStream, 0, 1, 0, 0, 8) }, want: connErr(frameSize)},

		// §6.5 SETTINGS.
		{rule: "6.5 SETTINGS ACK with a payload", prep: prepOpen, send: func(p *h2peer) {
			p.raw(http2.FrameSettings, http2.FlagSettingsAck, 0, 0, 4, 0, 0, 0, 1)
		}, want: connErr(frameSize)},
		{rule: "6.5 SETTINGS on a stream", prep: prepOpen, send: func(p *h2peer) { p.raw(http2.FrameSettings, 0, 1) }, want: connErr(protocol)},
		{rule: "6.5 SETTINGS of a length not a multiple of 6", prep: prepOpen, send: func(p *h2peer) {
			p.raw(http2.FrameSettings, 0, 0, 0, 3, 0, 0, 0)
		}, want: connErr(frameSize)},
		{rule: "6.5.2 SETTINGS_ENABLE_PUSH of 2", prep: prepOpen,
			send: settings(http2.Setting{ID: http2.SettingEnablePush, Val: 2}), want: connErr(protocol)},
		{rule: "6.5.2 SETTINGS_ENABLE_PUSH of 1 from a server", roles: clientOnly, prep: prepOpen,
			send: settings(http2.Setting{ID: http2.SettingEnablePush, Val: 1}), want: connErr(protocol)},
		{rule: "6.5.2 SETTINGS_ENABLE_PUSH of 1 from a client is accepted", roles: serverOnly, prep: prepOpen,
			send: settings(http2.Setting{ID: http2.SettingEnablePush, Val: 1}), want: accepted},
		{rule: "6.5.2 SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1", prep: prepOpen,
			send: settings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31}), want: connErr(flow)},
		{rule: "6.5.2 SETTINGS_MAX_FRAME_SIZE under 2^14", prep: prepOpen,
			send: settings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 16383}), want: connErr(protocol)},
		{rule: "6.5.2 SETTINGS_MAX_FRAME_SIZE over 2^24-1", prep: prepOpen,
			send: settings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 24}), want: connErr(protocol)},
		{rule: "6.5.2 an unknown setting is ignored", prep: prepOpen,
			send: settings(http2.Setting{ID: 0x4242, Val: 7}), want: accepted},
		{rule: "6.5.3 SETTINGS are acknowledged", prep: prepOpen, send: func(p *h2peer) {
			p.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 50})
			p.await(func(f http2.Frame) bool { s, ok := f.(*http2.SettingsFrame); return ok && s.IsAck() })
		}, want: accepted},
		{rule: "6.5.2 SETTINGS_HEADER_TABLE_SIZE of 0 is honoured", send: func(p *h2peer) {
			p.fr.ReadMetaHeaders.SetAllowedMaxDynamicTableSize(0) // a decoder with no dynamic table
			p.fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0})
			p.await(func(f http2.Frame) bool { s, ok := f.(*http2.SettingsFrame); return ok && s.IsAck() })
			p.exchangeHeaders()
		}, want: accepted},

		// §6.6 PUSH_PROMISE: push is off both ways.
		{rule: "6.6 PUSH_PROMISE", prep: prepOpen, send: func(p *h2peer) {
			p.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: p.encode(":method", "GET"), EndHeaders: true})
		}, want: connErr(protocol)},

		// §6.7 PING.
		{rule: "6.7 PING on a stream", prep: prepOpen, send: func(p *h2peer) { p.raw(http2.FramePing, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8) }, want: connErr(protocol)},
		{rule: "6.7 PING of 7 octets", prep: prepOpen, send: func(p *h2peer) { p.raw(http2.FramePing, 0, 0, 1, 2, 3, 4, 5, 6, 7) }, want: connErr(frameSize)},
		{rule: "6.7 a PING ACK is not answered", prep: prepOpen, send: func(p *h2peer) {
			p.fr.WritePing(true, [8]byte{'a', 'c', 'k'})
			p.fr.WritePing(false, [8]byte{'n', 'e', 'x', 't'})
			f := p.await(func(f http2.Frame) bool { _, ok := f.(*http2.PingFrame); return ok })
			if f.(*http2.PingFrame).Data != [8]byte{'n', 'e', 'x', 't'} {
				p.t.Error("our side answered a PING ACK")
			}
		}, want: accepted},

		// §6.8 GOAWAY.
		{rule: "6.8 GOAWAY on a stream", prep: prepOpen, send: func(p *h2peer) { p.raw(http2.FrameGoAway, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0) }, want: connErr(protocol)},
		// "A server that is attempting to gracefully shut down a connection SHOULD send
		// an initial GOAWAY frame with the last stream identifier set to 2^31-1 ...
		// After allowing time for any in-flight stream creation (at least one round-trip
		// time), the server MAY send another GOAWAY frame with an updated last stream
		// identifier." The stream opened in between is served; the one after is not.
		{rule: "6.8 a server's drain: GOAWAY 2^31-1, a round trip, GOAWAY naming the last stream", roles: serverOnly, prep: prepOpen,
			send: func(p *h2peer) {
				go p.conn().GoAway()
				first := p.await(func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok }).(*http2.GoAwayFrame)
				ping := p.await(func(f http2.Frame) bool { _, ok := f.(*http2.PingFrame); return ok }).(*http2.PingFrame)
				p.msg(3, false) // in flight when the GOAWAY arrived
				p.await(func(f http2.Frame) bool { h, ok := f.(*http2.MetaHeadersFrame); return ok && h.StreamID == 3 })
				p.fr.WritePing(true, ping.Data)
				second := p.await(func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok }).(*http2.GoAwayFrame)
				if first.LastStreamID != 1<<31-1 || second.LastStreamID != 3 || first.ErrCode != http2.ErrCodeNo || second.ErrCode != http2.ErrCodeNo {
					p.t.Errorf("GOAWAYs named %d (%v), then %d (%v); want 2^31-1, then 3, NO_ERROR", first.LastStreamID, first.ErrCode,
						second.LastStreamID, second.ErrCode)
				}
				p.msg(5, false)
				r := p.await(func(f http2.Frame) bool { _, ok := f.(*http2.RSTStreamFrame); return ok }).(*http2.RSTStreamFrame)
				if r.StreamID != 5 || r.ErrCode != http2.ErrCodeRefusedStream {
					p.t.Errorf("a stream after the second GOAWAY: %v on %d, want REFUSED_STREAM on 5", r.ErrCode, r.StreamID)
				}
				p.counted.reset() // the refusal is counted, as every refusal is
			}, want: accepted},
		{rule: "6.8 no new stream after GOAWAY", roles: clientOnly, prep: prepOpen, send: func(p *h2peer) {
			p.fr.WriteGoAway(1, http2.ErrCodeNo, nil)
			p.ping(0)
			if p.conn().TryReserve(100) {
				p.t.Error("our client would open a stream after GOAWAY")
			}
		}, want: accepted},

		// §6.9 WINDOW_UPDATE.
		{rule: "6.9 WINDOW_UPDATE of 0 on a stream", prep: prepOpen, send: func(p *h2peer) { p.fr.WriteWindowUpdate(1, 0) }, want: streamErr(1, protocol)},
		{rule: "6.9 WINDOW_UPDATE of 0 on the connection", prep: prepOpen, send: func(p *h2peer) { p.fr.WriteWindowUpdate(0, 0) }, want: connErr(protocol)},
		{rule: "6.9 WINDOW_UPDATE of 3 octets", prep: prepOpen, send: func(p *h2peer) { p.raw(http2.FrameWindowUpdate, 0, 1, 0, 0, 1) }, want: connErr(frameSize)},
		// §6.9.1: "If a sender receives a WINDOW_UPDATE that causes a flow-control
		// window to exceed this maximum, it MUST terminate either the stream or the
		// connection ... RST_STREAM ... or GOAWAY ... FLOW_CONTROL_ERROR."
		{rule: "6.9.1 a stream window over 2^31-1", prep: prepOpen, send: func(p *h2peer) {
			p.fr.WriteWindowUpdate(1, 1<<31-1)
		}, want: streamErr(1, flow)},
		{rule: "6.9.1 the connection window over 2^31-1", prep: prepOpen, send: func(p *h2peer) {
			p.fr.WriteWindowUpdate(0, 1<<31-1)
		}, want: connErr(flow)},
		{rule: "6.9.1 DATA beyond the stream window", prep: prepOpen, send: func(p *h2peer) {
			for range 5 {
				p.data(1, false, 16000)
			}
		}, want: connErr(flow)},
		{rule: "6.9.1 DATA beyond the connection window", prep: prepOpen,
			settings: func(s *hbone.Settings) { s.StreamWindow = 1 << 20 },
			send: func(p *h2peer) {
				for range 5 {
					p.data(1, false, 16000)
				}
			}, want: connErr(flow)},
		// §6.9.2: "An endpoint MUST treat a change to SETTINGS_INITIAL_WINDOW_SIZE that
		// causes any flow-control window to exceed the maximum size as a connection
		// error of type FLOW_CONTROL_ERROR."
		{rule: "6.9.2 SETTINGS_INITIAL_WINDOW_SIZE taking a stream window over 2^31-1", prep: prepOpen, send: func(p *h2peer) {
			p.fr.WriteWindowUpdate(1, 1<<31-1-65535)
			p.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65536})
		}, want: connErr(flow)},
	})
}

// exchangeHeaders makes our side encode a header block: our server answers a new
// CONNECT, our client's stream 1 is answered and half-closed by the script.
func (p *h2peer) exchangeHeaders() {
	p.t.Helper()
	if p.server {
		p.headers(1, false, ":method", "CONNECT", ":authority", holdAuthority)
	} else {
		p.headers(1, false, ":status", "200")
		st := <-p.stream
		if st == nil {
			p.t.Fatal("our client's stream failed")
		}
		return // a client encoded its request before the setting: nothing more to decode
	}
	f := p.await(func(f http2.Frame) bool { h, ok := f.(*http2.MetaHeadersFrame); return ok && h.StreamID == 1 })
	if h := f.(*http2.MetaHeadersFrame); h.PseudoValue("status") != "200" {
		p.t.Errorf("answer %v", h.Fields)
	}
}
