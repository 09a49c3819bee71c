package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/logging"
)

// reader reads declared variables and collects every parse error. It is used by one
// goroutine, during Load.
type reader struct {
	src  Source
	env  map[string]string
	errs []error
	pc   proxyConfig // the mesh file and PROXY_CONFIG, read first
	// metadata is ISTIO_META_* over the ProxyConfig's proxyMetadata (DNS_CAPTURE and
	// DNS_PROXY_ADDR are read there, as in Rust)
	metadata map[string]string
	// For the tests that keep vars.go honest: which names and families were read.
	onGet      func(name string)
	familyRead map[string]bool
}

func newReader(src Source) *reader {
	env := make(map[string]string, len(src.Env))
	for _, kv := range src.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return &reader{src: src, env: env, familyRead: map[string]bool{}}
}

// get returns a declared variable. Reading an undeclared one is a programming error:
// it would be a setting the README does not list.
func (r *reader) get(name string) (string, bool) {
	if !declared(name) {
		panic(fmt.Sprintf("config: variable %s is read but not declared in vars.go", name))
	}
	if r.onGet != nil {
		r.onGet(name)
	}
	v, ok := r.env[name]
	return v, ok
}

func (r *reader) has(name string) bool { _, ok := r.get(name); return ok }

func (r *reader) fail(name, value string, err error) {
	r.errs = append(r.errs, fmt.Errorf("invalid %s=%q: %w", name, value, err))
}

func (r *reader) str(name, def string) string {
	if v, ok := r.get(name); ok {
		return v
	}
	return def
}

func (r *reader) boolean(name string, def bool) bool {
	v, ok := r.get(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		r.fail(name, v, errors.New("want true or false"))
		return def
	}
	return b
}

// uint accepts decimal, or 0x-prefixed hex (marks are often written in hex).
func (r *reader) uint(name string, def, lo, hi uint64) uint64 {
	v, ok := r.get(name)
	if !ok {
		return def
	}
	n, err := strconv.ParseUint(strings.TrimSpace(v), 0, 64)
	if err != nil || n < lo || n > hi {
		r.fail(name, v, fmt.Errorf("want an integer from %d to %d", lo, hi))
		return def
	}
	return n
}

func (r *reader) duration(name string, def time.Duration) time.Duration {
	v, ok := r.get(name)
	if !ok {
		return def
	}
	d, err := parseDuration(v)
	if err != nil {
		r.fail(name, v, err)
		return def
	}
	return d
}

// parseDuration takes Go durations ("90s", "1h30m"), days ("1d", as Rust's parser does)
// and a bare number of seconds.
func parseDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		if n, err := strconv.ParseUint(days, 10, 16); err == nil {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, errors.New(`want a duration such as "30s", "5m", "24h" or "1d"`)
	}
	return d, nil
}

func (r *reader) oneOf(name, def string, allowed ...string) string {
	v, ok := r.get(name)
	if !ok || v == "" {
		return def
	}
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a
		}
	}
	r.fail(name, v, fmt.Errorf("want one of %s", strings.Join(allowed, ", ")))
	return def
}

// url adds https:// when no scheme is given, as Rust ztunnel does, and requires a host.
func (r *reader) url(name, def string) string {
	v, ok := r.get(name)
	if !ok {
		return def
	}
	if v == "" {
		return ""
	}
	if !strings.Contains(v, "://") {
		v = "https://" + v
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		r.fail(name, v, errors.New("want [https://]host:port"))
		return def
	}
	return v
}

func (r *reader) rootCert(name string) RootCert {
	v, ok := r.get(name)
	switch {
	case !ok || v == "":
		return RootCert{File: defaultRootCert}
	case v == "SYSTEM":
		return RootCert{System: true}
	case strings.Contains(v, "-----BEGIN"):
		return RootCert{PEM: v}
	default:
		return RootCert{File: v}
	}
}

// token treats a value containing "/" as a file (JWTs never contain "/"), else a literal.
func (r *reader) token(name string) Token {
	v, ok := r.get(name)
	switch {
	case !ok || v == "":
		return Token{File: defaultIstioToken}
	case strings.Contains(v, "/"):
		return Token{File: v}
	default:
		return Token{Literal: v}
	}
}

// withPrefix returns the variables of a family, sorted by name so that maps built from
// them and logs of them are stable.
func (r *reader) withPrefix(prefix string) []Header {
	r.familyRead[prefix] = true
	var out []Header
	for k, v := range r.env {
		if name, ok := strings.CutPrefix(k, prefix); ok && name != "" && declared(k) {
			out = append(out, Header{Name: name, Value: v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (r *reader) headers(prefix string) []Header {
	var out []Header
	for _, h := range r.withPrefix(prefix) {
		name := strings.ToLower(h.Name)
		if !validHeaderName(name) || !validHeaderValue(h.Value) {
			r.fail(prefix+h.Name, h.Value, errors.New("want a gRPC metadata name and a printable ASCII value"))
			continue
		}
		out = append(out, Header{Name: name, Value: h.Value})
	}
	return out
}

func validHeaderName(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return s != "" && !strings.HasSuffix(s, "-bin")
}

func validHeaderValue(s string) bool {
	for _, c := range s {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// workerThreads: "N", "N%" of the CPUs (rounded up), or "0" for all CPUs.
func (r *reader) workerThreads(name string, cpus int) int {
	v, ok := r.get(name)
	if !ok || v == "" {
		return cpus
	}
	if pct, isPct := strings.CutSuffix(v, "%"); isPct {
		p, err := strconv.ParseUint(pct, 10, 8)
		if err != nil || p == 0 || p > 100 {
			r.fail(name, v, errors.New("want a percentage from 1% to 100%"))
			return cpus
		}
		return max(1, int(math.Ceil(float64(cpus)*float64(p)/100)))
	}
	n, err := strconv.ParseUint(v, 10, 16)
	if err != nil {
		r.fail(name, v, errors.New(`want a thread count, "N%" of CPUs, or 0 for all CPUs`))
		return cpus
	}
	if n == 0 {
		return cpus
	}
	return int(n)
}

// cpuQuantity reads a Kubernetes CPU quantity ("2", "1.5", "500m") as whole CPUs,
// rounded up; 0 when unset.
func (r *reader) cpuQuantity(name string) int {
	v, ok := r.get(name)
	if !ok || v == "" {
		return 0
	}
	cores, err := strconv.ParseFloat(strings.TrimSuffix(v, "m"), 64)
	if strings.HasSuffix(v, "m") {
		cores /= 1000
	}
	if err != nil || math.IsInf(cores, 0) || math.IsNaN(cores) || cores <= 0 || cores > 1<<16 {
		r.fail(name, v, errors.New(`want a positive CPU quantity such as "2", "1.5" or "500m"`))
		return 0
	}
	return int(math.Ceil(cores))
}

func (r *reader) logLevel(name, def string) string {
	v, ok := r.get(name)
	if !ok || v == "" {
		return def
	}
	if _, err := logging.ParseSpec(v); err != nil {
		r.fail(name, v, err)
		return def
	}
	return v
}

func jsonValid(s string) bool { return json.Valid([]byte(s)) }
