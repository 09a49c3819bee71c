package hbone_test

import (
	"testing"

	"golang.org/x/net/http2"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
)

// RFC 9113 §5.1 (stream states), §5.1.1 (identifiers), §5.1.2 (concurrency), and the
// self-dependency of RFC 7540 §5.3.1.
func TestConformanceStreamStates(t *testing.T) {
	const (
		protocol = http2.ErrCodeProtocol
		closed   = http2.ErrCodeStreamClosed
	)
	runConformance(t, []conformanceCase{
		// idle: "Receiving any frame other than HEADERS or PRIORITY on a stream in this
		// state MUST be treated as a connection error of type PROTOCOL_ERROR."
		{rule: "5.1 idle: DATA", prep: prepOpen, send: func(p *h2peer) { p.data(3, false, 1) }, want: connErr(protocol)},
		{rule: "5.1 idle: RST_STREAM", prep: prepOpen, send: func(p *h2peer) { p.fr.WriteRSTStream(3, http2.ErrCodeCancel) }, want: connErr(protocol)},
		{rule: "5.1 idle: WINDOW_UPDATE", prep: prepOpen, send: func(p *h2peer) { p.fr.WriteWindowUpdate(3, 1) }, want: connErr(protocol)},
		{rule: "5.1 idle: WINDOW_UPDATE of 0", prep: prepOpen, send: func(p *h2peer) { p.fr.WriteWindowUpdate(3, 0) }, want: connErr(protocol)},
		{rule: "5.1 idle: CONTINUATION", prep: prepOpen, send: func(p *h2peer) { p.fr.WriteContinuation(3, true, p.encode("a", "b")) }, want: connErr(protocol)},
		{rule: "5.1 idle: PRIORITY is allowed", prep: prepOpen, send: func(p *h2peer) {
			p.fr.WritePriority(3, http2.PriorityParam{StreamDep: 1, Weight: 10})
		}, want: accepted},
		// "If this stream is initiated by the server ... receiving a HEADERS frame MUST
		// also be treated as a connection error of type PROTOCOL_ERROR."
		{rule: "5.1 idle: HEADERS on a server-initiated stream", prep: prepOpen, send: func(p *h2peer) { p.msg(2, false) }, want: connErr(protocol)},
		{rule: "5.1 idle: HEADERS on a client stream never opened", roles: clientOnly, prep: prepOpen, send: func(p *h2peer) {
			p.msg(3, false)
		}, want: connErr(protocol)},

		// half-closed (remote): "If an endpoint receives additional frames, other than
		// WINDOW_UPDATE, PRIORITY, or RST_STREAM, ... it MUST respond with a stream
		// error of type STREAM_CLOSED."
		{rule: "5.1 half-closed (remote): DATA", prep: prepHalfClosedRemote, send: func(p *h2peer) { p.data(1, false, 1) }, want: streamErr(1, closed)},
		{rule: "5.1 half-closed (remote): empty DATA with END_STREAM", prep: prepHalfClosedRemote, send: func(p *h2peer) {
			p.data(1, true, 0)
		}, want: streamErr(1, closed)},
		{rule: "5.1 half-closed (remote): HEADERS", prep: prepHalfClosedRemote, send: func(p *h2peer) { p.headers(1, true, "x-trailer", "1") }, want: streamErr(1, closed)},
		{rule: "5.1 half-closed (remote): WINDOW_UPDATE is allowed", prep: prepHalfClosedRemote, send: func(p *h2peer) {
			p.fr.WriteWindowUpdate(1, 1000)
		}, want: accepted},
		{rule: "5.1 half-closed (remote): PRIORITY is allowed", prep: prepHalfClosedRemote, send: func(p *h2peer) {
			p.fr.WritePriority(1, http2.PriorityParam{Weight: 10})
		}, want: accepted},
		{rule: "5.1 half-closed (remote): RST_STREAM is allowed", prep: prepHalfClosedRemote, send: func(p *h2peer) {
			p.fr.WriteRSTStream(1, http2.ErrCodeCancel)
		}, want: accepted},

		// closed: DATA is answered STREAM_CLOSED (§6.1); WINDOW_UPDATE and RST_STREAM
		// that were in flight MUST be ignored; PRIORITY can be received in any state.
		{rule: "5.1 closed: DATA after END_STREAM both ways", prep: prepClosed, send: func(p *h2peer) { p.data(1, false, 1) }, want: streamErr(1, closed)},
		{rule: "5.1 closed: HEADERS after END_STREAM both ways", prep: prepClosed, send: func(p *h2peer) { p.headers(1, true, "x-late", "1") }, want: streamErr(1, closed)},
		{rule: "5.1 closed: WINDOW_UPDATE is ignored", prep: prepClosed, send: func(p *h2peer) { p.fr.WriteWindowUpdate(1, 1) }, want: accepted},
		{rule: "5.1 closed: RST_STREAM is ignored, never answered (5.4.2)", prep: prepClosed, send: func(p *h2peer) {
			p.fr.WriteRSTStream(1, http2.ErrCodeCancel)
		}, want: accepted},
		{rule: "5.1 closed: PRIORITY is allowed", prep: prepClosed, send: func(p *h2peer) {
			p.fr.WritePriority(1, http2.PriorityParam{Weight: 1})
		}, want: accepted},
		{rule: "5.1 closed: DATA after the peer's RST_STREAM", prep: prepPeerReset, send: func(p *h2peer) { p.data(1, false, 1) }, want: streamErr(1, closed)},
		{rule: "5.1 closed: HEADERS after the peer's RST_STREAM", prep: prepPeerReset, send: func(p *h2peer) {
			p.headers(1, true, "x-late", "1")
		}, want: streamErr(1, closed)},
		{rule: "5.1 closed: STREAM_CLOSED is sent once per stream (5.4.2)", prep: prepClosed, send: func(p *h2peer) {
			p.data(1, false, 1)
			p.await(func(f http2.Frame) bool { _, ok := f.(*http2.RSTStreamFrame); return ok })
			p.counted.reset() // what follows must go unanswered
			p.data(1, false, 1)
		}, want: accepted},
		// "An endpoint MUST minimally process and then discard any frames it receives
		// in this state [after sending RST_STREAM] ... the content of DATA frames counts
		// toward the connection flow-control window": 80 KB past a 64 KB window.
		{rule: "5.1 closed: DATA after our RST_STREAM is discarded and credited", prep: prepOurReset, send: func(p *h2peer) {
			for range 5 {
				p.data(1, false, 16000)
			}
			p.await(func(f http2.Frame) bool { w, ok := f.(*http2.WindowUpdateFrame); return ok && w.StreamID == 0 })
		}, want: accepted},
		{rule: "5.1 closed: HEADERS after our RST_STREAM is discarded, its HPACK state kept", prep: prepOurReset, send: func(p *h2peer) {
			p.headers(1, true, "x-table", "entry") // enters the peer's dynamic table
			p.headers(1, true, "x-table", "entry") // indexed: decodable only if the first was decoded
		}, want: accepted},

		// §5.1.1: "The identifier of a newly established stream MUST be numerically
		// greater than all streams that the initiating endpoint has opened ... MUST
		// respond with a connection error of type PROTOCOL_ERROR."
		{rule: "5.1.1 a stream id going backwards", roles: serverOnly, send: func(p *h2peer) {
			p.msg(5, false)
			p.msg(3, false)
		}, want: connErr(protocol)},
		{rule: "5.1.1 a stream id reused", roles: serverOnly, prep: prepClosed, send: func(p *h2peer) {
			p.msg(3, false)
			p.msg(5, false)
			p.msg(1, false)
		}, want: streamErr(1, closed)},
		{rule: "5.1.1 an even stream id from a client", roles: serverOnly, send: func(p *h2peer) { p.msg(2, false) }, want: connErr(protocol)},
		// §5.1.2: "... MUST treat this as a stream error of type PROTOCOL_ERROR or
		// REFUSED_STREAM."
		{rule: "5.1.2 a stream over MAX_CONCURRENT_STREAMS", roles: serverOnly, prep: prepOpen,
			settings: func(s *hbone.Settings) { s.MaxStreams = 1 },
			send:     func(p *h2peer) { p.msg(3, false) }, want: streamErr(3, http2.ErrCodeRefusedStream)},

		// RFC 7540 §5.3.1: "A stream cannot depend on itself. An endpoint MUST treat
		// this as a stream error of type PROTOCOL_ERROR."
		{rule: "5.3.1 PRIORITY making a stream depend on itself", prep: prepOpen, send: func(p *h2peer) {
			p.fr.WritePriority(1, http2.PriorityParam{StreamDep: 1, Weight: 1})
		}, want: streamErr(1, protocol)},
		{rule: "5.3.1 PRIORITY making an idle stream depend on itself", prep: prepOpen, send: func(p *h2peer) {
			p.fr.WritePriority(3, http2.PriorityParam{StreamDep: 3, Weight: 1})
		}, want: connErr(protocol)},
		{rule: "5.3.1 HEADERS making its stream depend on itself", send: func(p *h2peer) {
			if p.server {
				p.opened = 1
			}
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: p.encode(p.control()...), EndHeaders: true,
				Priority: http2.PriorityParam{StreamDep: 1, Weight: 1}})
		}, want: streamErr(1, protocol)},
	})
}
