package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// Upstream is where names the mesh does not know go: the resolvers of ztunnel's own
// resolv.conf (kube-dns in a cluster), tried in order, Attempts rounds.
type Upstream struct {
	Servers  []netip.AddrPort
	Timeout  time.Duration // per try
	Attempts int
}

// ReadResolvConf reads the nameservers, search list and options of a resolv.conf(5)
// with miekg/dns's parser. Nameservers that are not IP addresses cannot be dialled:
// they are skipped and returned, for the caller to warn about.
func ReadResolvConf(path string) (Upstream, []string, []string, error) {
	cc, err := mdns.ClientConfigFromFile(path)
	if err != nil {
		return Upstream{}, nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	port := uint16(53)
	if p, err := strconv.ParseUint(cc.Port, 10, 16); err == nil {
		port = uint16(p)
	}
	up := Upstream{Timeout: time.Duration(cc.Timeout) * time.Second, Attempts: cc.Attempts}
	var skipped []string
	for _, s := range cc.Servers {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			skipped = append(skipped, s)
			continue
		}
		up.Servers = append(up.Servers, netip.AddrPortFrom(ip, port))
	}
	search := make([]string, 0, len(cc.Search))
	for _, d := range cc.Search {
		search = append(search, normalize(d))
	}
	return up, search, skipped, nil
}

// Dialer makes the sockets of upstream queries. In in-pod mode they are created in the
// client pod's namespace with ztunnel's mark, so they leave as the pod's traffic and
// istio-cni's rules (mark 1337: not captured, conntrack zone 1) let them out.
type Dialer interface {
	DialUDP(ctx context.Context, remote netip.AddrPort) (net.Conn, error)
	Dial(ctx context.Context, local netip.Addr, remote netip.AddrPort) (net.Conn, error)
}

var errNoUpstream = errors.New("no upstream nameserver in resolv.conf")

// forwarder sends queries upstream and returns the first matching answer as the
// upstream wrote it. It bounds the queries each client has in flight, so that one pod
// flooding names nobody knows cannot take every socket and goroutine from another.
type forwarder struct {
	up    Upstream
	dial  Dialer
	limit int

	mu       sync.Mutex     // guards inflight
	inflight map[string]int // by client key
}

// reply is an upstream answer: its bytes as received and their parse.
type reply struct {
	raw    []byte
	msg    *mdns.Msg
	server netip.AddrPort
}

func (f *forwarder) acquire(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inflight[key] >= f.limit {
		return false
	}
	f.inflight[key]++
	return true
}

func (f *forwarder) release(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inflight[key]--; f.inflight[key] <= 0 {
		delete(f.inflight, key)
	}
}

// exchange forwards req under a fresh random ID (the client's ID is no secret the
// upstream's answer should be matched by) and waits for an answer to that ID and
// question from the server it was sent to.
func (f *forwarder) exchange(ctx context.Context, req *mdns.Msg) (reply, error) {
	if len(f.up.Servers) == 0 {
		return reply{}, errNoUpstream
	}
	clientID := req.Id
	req.Id = mdns.Id()
	packed, err := req.Pack()
	id := req.Id
	req.Id = clientID
	if err != nil {
		return reply{}, fmt.Errorf("packing the query: %w", err)
	}
	var errs []error
	for range max(f.up.Attempts, 1) {
		for _, srv := range f.up.Servers {
			r, err := f.try(ctx, packed, id, req, srv)
			if err == nil {
				return r, nil
			}
			errs = append(errs, err)
			if ctx.Err() != nil {
				return reply{}, errors.Join(errs...)
			}
		}
	}
	return reply{}, errors.Join(errs...)
}

// try asks one server over UDP, and again over TCP when the answer was truncated.
func (f *forwarder) try(ctx context.Context, packed []byte, id uint16, req *mdns.Msg, srv netip.AddrPort) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, f.up.Timeout)
	defer cancel()
	r, err := f.udp(ctx, packed, id, req, srv)
	if err == nil && r.msg.Truncated {
		return f.tcp(ctx, packed, id, req, srv)
	}
	return r, err
}

func (f *forwarder) udp(ctx context.Context, packed []byte, id uint16, req *mdns.Msg, srv netip.AddrPort) (reply, error) {
	c, err := f.dial.DialUDP(ctx, srv)
	if err != nil {
		return reply{}, err
	}
	defer c.Close()
	stop := deadlineFrom(ctx, c)
	defer stop()
	if _, err := c.Write(packed); err != nil {
		return reply{}, fmt.Errorf("asking %s: %w", srv, err)
	}
	buf := make([]byte, udpSize(req, mdns.MaxMsgSize))
	for { // a datagram that is not the answer (late, stray or forged) is dropped
		n, err := c.Read(buf)
		if err != nil {
			return reply{}, fmt.Errorf("waiting for %s: %w", srv, err)
		}
		if m := matchReply(buf[:n], id, req); m != nil {
			return reply{raw: buf[:n], msg: m, server: srv}, nil
		}
	}
}

func (f *forwarder) tcp(ctx context.Context, packed []byte, id uint16, req *mdns.Msg, srv netip.AddrPort) (reply, error) {
	c, err := f.dial.Dial(ctx, netip.Addr{}, srv)
	if err != nil {
		return reply{}, err
	}
	defer c.Close()
	stop := deadlineFrom(ctx, c)
	defer stop()
	co := &mdns.Conn{Conn: c}
	if _, err := co.Write(packed); err != nil {
		return reply{}, fmt.Errorf("asking %s over TCP: %w", srv, err)
	}
	raw, err := co.ReadMsgHeader(nil)
	if err != nil {
		return reply{}, fmt.Errorf("waiting for %s over TCP: %w", srv, err)
	}
	m := matchReply(raw, id, req)
	if m == nil {
		return reply{}, fmt.Errorf("%s answered another question over TCP", srv)
	}
	return reply{raw: raw, msg: m, server: srv}, nil
}

// deadlineFrom makes c's I/O end at ctx's deadline, or at once when ctx is cancelled
// (a drain), and returns the function that stops watching.
func deadlineFrom(ctx context.Context, c net.Conn) func() bool {
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	return context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
}

// matchReply parses raw and returns it when it answers req's question under id.
func matchReply(raw []byte, id uint16, req *mdns.Msg) *mdns.Msg {
	m := new(mdns.Msg)
	if err := m.Unpack(raw); err != nil || m.Id != id || !m.Response || len(m.Question) != 1 {
		return nil
	}
	q, want := m.Question[0], req.Question[0]
	if q.Qtype != want.Qtype || q.Qclass != want.Qclass || !strings.EqualFold(q.Name, want.Name) {
		return nil
	}
	return m
}

// udpSize is the largest UDP answer the asker accepts: its EDNS size, at least 512
// (RFC 6891 §6.2.5), at most limit.
func udpSize(req *mdns.Msg, limit int) int {
	size := mdns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
		size = int(opt.UDPSize())
	}
	return min(size, limit)
}
