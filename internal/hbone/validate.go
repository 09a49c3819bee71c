package hbone

import (
	"strconv"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Header sections are checked as RFC 9113 §8 requires; one that breaks a rule is
// malformed, which is a stream error PROTOCOL_ERROR (§8.1.1), not an HTTP answer: x/net
// and Rust's h2 reset such streams before any handler sees them, so the Rust ztunnel
// never answers them 400 either. The framer has already checked what is common to
// every header block: field names lowercase tokens, values without NUL, CR or LF,
// pseudo-headers known, unrepeated and first, and requests' and responses' apart.
// A well-formed request other than CONNECT is the handler's to refuse (with 400, as
// Rust's inbound does).

// requestOf reads a request's header section; reason says why it is malformed.
func requestOf(f *http2.MetaHeadersFrame) (r *Request, reason string) {
	r = &Request{Authority: f.PseudoValue("authority"), Other: map[string]string{}, contentLen: -1}
	if f.Truncated { // over MaxHeaderListSize: answered 431, not judged on part of it
		r.tooLarge = true
		return r, ""
	}
	method := f.PseudoValue("method")
	r.Other[":method"] = method
	for _, name := range []string{"path", "scheme"} {
		if v := f.PseudoValue(name); v != "" {
			r.Other[":"+name] = v
		}
	}
	if reason := requestPseudoErr(f, method); reason != "" {
		return nil, reason
	}
	r.contentLen, reason = fieldsErr(f.RegularFields(), true)
	for _, h := range f.RegularFields() {
		switch h.Name {
		case "baggage":
			r.Baggage = h.Value
		case "forwarded":
			r.Forwarded = h.Value
		case "traceparent":
			r.Traceparent = h.Value
		case "x-forwarded-network":
			r.ForwardedNetwork = &h.Value
		case "host":
			if r.Authority != "" && !strings.EqualFold(h.Value, r.Authority) {
				reason = "host header differs from :authority (§8.3.1)"
			}
			r.Other[h.Name] = h.Value
		default:
			r.Other[h.Name] = h.Value
		}
	}
	if reason == "" && f.StreamEnded() && r.contentLen > 0 {
		reason = "END_STREAM with a non-zero content-length"
	}
	if reason == "" {
		reason = selfDependentErr(f)
	}
	return r, reason
}

// requestPseudoErr checks a request's control data (§8.3.1), CONNECT's by §8.5.
func requestPseudoErr(f *http2.MetaHeadersFrame, method string) string {
	switch {
	case f.PseudoValue("status") != "":
		return ":status in a request"
	case method == "":
		return "no :method"
	case f.PseudoValue("protocol") != "": // RFC 8441 extended CONNECT is not offered
		return ":protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL"
	case method != "CONNECT" && (f.PseudoValue("scheme") == "" || f.PseudoValue("path") == ""):
		return "no :scheme or :path"
	case method != "CONNECT":
		return ""
	case hasPseudo(f, ":scheme") || hasPseudo(f, ":path"): // present, even empty
		return ":scheme or :path in a CONNECT (§8.5)"
	case f.PseudoValue("authority") == "":
		return "CONNECT without :authority (§8.5)"
	}
	return ""
}

func hasPseudo(f *http2.MetaHeadersFrame, name string) bool {
	for _, p := range f.PseudoFields() {
		if p.Name == name {
			return true
		}
	}
	return false
}

// responseOf reads a response's :status (§8.3.2); reason says why it is malformed.
func responseOf(f *http2.MetaHeadersFrame) (status int, reason string) {
	for _, p := range f.PseudoFields() {
		if p.Name != ":status" {
			return 0, p.Name + " in a response"
		}
	}
	v := f.PseudoValue("status")
	status, err := strconv.Atoi(v)
	switch {
	case len(v) != 3 || err != nil || status < 100:
		return 0, "no valid :status"
	case status == 101:
		return 0, "101 (Switching Protocols) in HTTP/2 (§8.6)"
	case status < 200 && f.StreamEnded():
		return 0, "an informational response with END_STREAM (§8.1)"
	}
	// A client ignores content-length in a 2xx answer to CONNECT (RFC 9110 §9.3.6), and
	// reads no content of another answer: it is not counted.
	if _, reason := fieldsErr(f.RegularFields(), false); reason != "" {
		return 0, reason
	}
	return status, selfDependentErr(f)
}

// trailersErr checks a trailer section (§8.1): it ends the stream and has no control data.
func trailersErr(f *http2.MetaHeadersFrame, request bool) string {
	switch {
	case !f.StreamEnded():
		return "a second HEADERS without END_STREAM (§8.1)"
	case len(f.PseudoFields()) > 0:
		return "pseudo-header in trailers (§8.1)"
	}
	if _, reason := fieldsErr(f.RegularFields(), request); reason != "" {
		return reason
	}
	return selfDependentErr(f)
}

// fieldsErr checks regular fields (§8.2.1, §8.2.2) and reads content-length (-1 if
// none). The framer checked names and the characters of values.
func fieldsErr(fields []hpack.HeaderField, request bool) (contentLen int64, reason string) {
	contentLen = -1
	for _, h := range fields {
		switch h.Name {
		case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
			return -1, "connection-specific header " + h.Name + " (§8.2.2)"
		case "te":
			if !request || h.Value != "trailers" {
				return -1, "te other than trailers (§8.2.2)"
			}
		case "content-length":
			n, err := strconv.ParseUint(h.Value, 10, 63)
			if err != nil || (contentLen >= 0 && int64(n) != contentLen) {
				return -1, "invalid or conflicting content-length"
			}
			contentLen = int64(n)
		}
		if v := h.Value; v != "" && (isBlank(v[0]) || isBlank(v[len(v)-1])) {
			return -1, "field " + h.Name + " with leading or trailing whitespace (§8.2.1)"
		}
	}
	return contentLen, ""
}

func isBlank(b byte) bool { return b == ' ' || b == '\t' }

// selfDependentErr: a HEADERS frame's priority making its stream depend on itself
// (RFC 7540 §5.3.1).
func selfDependentErr(f *http2.MetaHeadersFrame) string {
	if f.HasPriority() && f.Priority.StreamDep == f.StreamID {
		return "stream depends on itself"
	}
	return ""
}
