package hbone_test

import (
	"testing"

	"golang.org/x/net/http2"
)

// RFC 9113 §8.1–§8.5: HTTP messages. "Malformed requests or responses that are
// detected MUST be treated as a stream error of type PROTOCOL_ERROR" (§8.1.1); a
// client "MUST NOT accept a malformed response".
func TestConformanceMessages(t *testing.T) {
	malformed := streamErr(1, http2.ErrCodeProtocol)
	// get is a well-formed request other than CONNECT: our server's handler leaves it
	// unanswered, so what follows it is judged by hbone alone.
	get := []string{":method", "POST", ":scheme", "https", ":path", "/", ":authority", "x.test"}
	with := func(base []string, extra ...string) []string { return append(append([]string{}, base...), extra...) }
	headers := func(end bool, fields ...string) func(p *h2peer) {
		return func(p *h2peer) { p.headers(1, end, fields...) }
	}
	// msg sends the role's own first header section (a CONNECT, or a 200) with extra fields.
	msg := func(extra ...string) func(p *h2peer) { return func(p *h2peer) { p.msg(1, false, extra...) } }
	runConformance(t, []conformanceCase{
		// §8.1: message framing.
		{rule: "8.1 trailers without END_STREAM", roles: serverOnly, send: func(p *h2peer) {
			p.headers(1, false, get...)
			p.headers(1, false, "x-trailer", "1")
		}, want: malformed},
		{rule: "8.1 pseudo-header in trailers", roles: serverOnly, send: func(p *h2peer) {
			p.headers(1, false, get...)
			p.headers(1, true, ":path", "/")
		}, want: malformed},
		{rule: "8.1 trailers ending a request are accepted", roles: serverOnly, send: func(p *h2peer) {
			p.headers(1, false, get...)
			p.headers(1, true, "x-trailer", "1")
		}, want: accepted},
		// "a server MAY request that the client abort transmission of a request without
		// error by sending a RST_STREAM with an error code of NO_ERROR after sending a
		// complete response", as Rust's h2 does (maybe_cancel in streams.rs).
		{rule: "8.1 a complete answer before the request ends, then RST_STREAM(NO_ERROR)", roles: serverOnly, send: func(p *h2peer) {
			p.headers(1, false, ":method", "CONNECT", ":authority", refuseAuthority)
			f := p.await(func(f http2.Frame) bool { h, ok := f.(*http2.MetaHeadersFrame); return ok && h.StreamID == 1 })
			if h := f.(*http2.MetaHeadersFrame); h.PseudoValue("status") != "403" || !h.StreamEnded() {
				p.t.Errorf("answer %v, end %v; want a complete 403", h.Fields, h.StreamEnded())
			}
			f = p.await(func(f http2.Frame) bool { r, ok := f.(*http2.RSTStreamFrame); return ok && r.StreamID == 1 })
			if r, ok := f.(*http2.RSTStreamFrame); !ok || r.ErrCode != http2.ErrCodeNo {
				p.t.Errorf("then %v, want RST_STREAM NO_ERROR", describe(f))
			}
		}, want: accepted},
		{rule: "8.1 an informational response with END_STREAM", roles: clientOnly, send: headers(true, ":status", "100"), want: malformed},
		{rule: "8.1 an informational response, then the final one", roles: clientOnly, send: func(p *h2peer) {
			p.headers(1, false, ":status", "100")
			p.headers(1, false, ":status", "200")
			if <-p.stream == nil {
				p.t.Error("our client did not take the final response after the interim one")
			}
		}, want: accepted},
		{rule: "8.1 DATA before the response's header section", roles: clientOnly, send: func(p *h2peer) { p.data(1, false, 1) }, want: malformed},
		// §8.1.1: content-length.
		{rule: "8.1.1 DATA beyond content-length", roles: serverOnly, send: func(p *h2peer) {
			p.headers(1, false, with(get, "content-length", "1")...)
			p.data(1, true, 4)
		}, want: malformed},
		{rule: "8.1.1 END_STREAM before content-length", roles: serverOnly, send: func(p *h2peer) {
			p.headers(1, false, with(get, "content-length", "5")...)
			p.data(1, true, 2)
		}, want: malformed},
		{rule: "8.1.1 END_STREAM on HEADERS with content-length", roles: serverOnly,
			send: headers(true, with(get, "content-length", "1")...), want: malformed},
		{rule: "8.1.1 content-length not a number", roles: serverOnly, send: headers(false, with(get, "content-length", "1x")...), want: malformed},
		{rule: "8.1.1 content-length matching the DATA is accepted", roles: serverOnly, send: func(p *h2peer) {
			p.headers(1, false, with(get, "content-length", "4")...)
			p.data(1, false, 1)
			p.data(1, true, 3)
		}, want: accepted},

		// §8.2.1: field validity, both ways.
		{rule: "8.2.1 an uppercase field name", send: msg("X-Upper", "1"), want: malformed},
		{rule: "8.2.1 a field name with a colon", send: msg("x:y", "1"), want: malformed},
		{rule: "8.2.1 a field value with CR LF", send: msg("x-crlf", "a\r\nb"), want: malformed},
		{rule: "8.2.1 a field value with NUL", send: msg("x-nul", "a\x00b"), want: malformed},
		{rule: "8.2.1 a field value with leading whitespace", send: msg("x-space", " a"), want: malformed},
		{rule: "8.2.1 a field value with trailing whitespace", send: msg("x-tab", "a\t"), want: malformed},
		// §8.2.2: connection-specific fields.
		{rule: "8.2.2 connection", send: msg("connection", "keep-alive"), want: malformed},
		{rule: "8.2.2 keep-alive", send: msg("keep-alive", "5"), want: malformed},
		{rule: "8.2.2 proxy-connection", send: msg("proxy-connection", "close"), want: malformed},
		{rule: "8.2.2 transfer-encoding", send: msg("transfer-encoding", "chunked"), want: malformed},
		{rule: "8.2.2 upgrade", send: msg("upgrade", "h2c"), want: malformed},
		{rule: "8.2.2 te other than trailers", roles: serverOnly, send: msg("te", "gzip"), want: malformed},
		{rule: "8.2.2 te in a response", roles: clientOnly, send: msg("te", "trailers"), want: malformed},
		{rule: "8.2.2 te: trailers in a request is accepted", roles: serverOnly, send: func(p *h2peer) {
			p.msg(1, false, "te", "trailers")
			p.await(func(f http2.Frame) bool { h, ok := f.(*http2.MetaHeadersFrame); return ok && h.StreamID == 1 })
		}, want: accepted},

		// §8.3: control data.
		{rule: "8.3 an undefined pseudo-header", send: func(p *h2peer) { p.headers(1, false, with(p.control(), ":extra", "1")...) }, want: malformed},
		{rule: "8.3 a pseudo-header after a regular field", send: func(p *h2peer) {
			c := p.control()
			p.headers(1, false, append(append([]string{c[0], c[1], "x-first", "1"}, c[2:]...), ":x", "")...)
		}, want: malformed},
		{rule: "8.3 a repeated pseudo-header", send: func(p *h2peer) { p.headers(1, false, with(p.control(), p.control()[0], p.control()[1])...) }, want: malformed},
		{rule: "8.3 a response pseudo-header in a request", roles: serverOnly, send: msg(":status", "200"), want: malformed},
		{rule: "8.3 a request pseudo-header in a response", roles: clientOnly, send: func(p *h2peer) {
			p.headers(1, false, ":status", "200", ":path", "/")
		}, want: malformed},
		// §8.3.1: "All HTTP/2 requests MUST include exactly one valid value for the
		// :method, :scheme, and :path pseudo-header fields, unless they are CONNECT."
		{rule: "8.3.1 no :method", roles: serverOnly, send: headers(false, ":scheme", "https", ":path", "/", ":authority", "x.test"), want: malformed},
		{rule: "8.3.1 no :scheme", roles: serverOnly, send: headers(false, ":method", "GET", ":path", "/", ":authority", "x.test"), want: malformed},
		{rule: "8.3.1 no :path", roles: serverOnly, send: headers(false, ":method", "GET", ":scheme", "https", ":authority", "x.test"), want: malformed},
		{rule: "8.3.1 an empty :path", roles: serverOnly, send: headers(false, ":method", "GET", ":scheme", "https", ":path", "", ":authority", "x.test"), want: malformed},
		{rule: "8.3.1 a host unlike :authority", roles: serverOnly, send: msg("host", "other.test:80"), want: malformed},
		// §8.3.2: ":status ... MUST be included in all responses."
		{rule: "8.3.2 no :status", roles: clientOnly, send: headers(false, "x-no-status", "1"), want: malformed},
		{rule: "8.3.2 a :status not of three digits", roles: clientOnly, send: headers(false, ":status", "2000"), want: malformed},
		{rule: "8.6 101 Switching Protocols", roles: clientOnly, send: headers(false, ":status", "101"), want: malformed},

		// §8.5 CONNECT: ":scheme and :path MUST be omitted", :authority names the host
		// and port; "Frame types other than DATA or stream management frames ... MUST be
		// treated as a stream error if received" on a connected stream.
		{rule: "8.5 CONNECT with :scheme", roles: serverOnly, send: msg(":scheme", "https"), want: malformed},
		{rule: "8.5 CONNECT with :path", roles: serverOnly, send: headers(false, ":method", "CONNECT", ":path", "/", ":authority", holdAuthority), want: malformed},
		{rule: "8.5 CONNECT with an empty :path", roles: serverOnly, send: headers(false, ":method", "CONNECT", ":path", "", ":authority", holdAuthority), want: malformed},
		{rule: "8.5 CONNECT without :authority", roles: serverOnly, send: headers(false, ":method", "CONNECT"), want: malformed},
		{rule: "8.5 CONNECT with :protocol (RFC 8441, not offered)", roles: serverOnly, send: msg(":protocol", "websocket"), want: malformed},
		{rule: "8.5 HEADERS on a connected stream", prep: prepOpen, send: func(p *h2peer) { p.headers(1, true, "x-trailer", "1") }, want: malformed},
		{rule: "8.5 a CONNECT is answered", roles: serverOnly, send: func(p *h2peer) {
			p.msg(1, false)
			f := p.await(func(f http2.Frame) bool { h, ok := f.(*http2.MetaHeadersFrame); return ok && h.StreamID == 1 })
			if h := f.(*http2.MetaHeadersFrame); h.PseudoValue("status") != "200" || h.StreamEnded() {
				p.t.Errorf("CONNECT answered %v", h.Fields)
			}
		}, want: accepted},
	})
}
