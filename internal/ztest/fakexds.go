package ztest

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"

	discoverypb "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// FakeXDS is an istiod delta ADS server on loopback, built on go-control-plane's types.
// It serves whatever resources the test sets, computes deltas against the client's
// initial_resource_versions, and can drop streams or go silent.
type FakeXDS struct {
	Address  string // http://127.0.0.1:<port>, or https://localhost:<port> with TLS
	ServePEM string // the TLS server's root, when TLS is on

	srv  *grpc.Server
	cert *servingCert  // with TLS; RotateServing replaces it
	lis  *connListener // RotateServing drops its connections

	mu        sync.Mutex                                  // guards the fields below
	resources map[string]map[string]*discoverypb.Resource // type → name → resource
	streams   map[*fakeStream]struct{}
	requests  []*discoverypb.DeltaDiscoveryRequest
	version   int
	nonce     int
	silent    bool
	changed   chan struct{} // closed and replaced whenever a request arrives
}

type fakeStream struct {
	send    sync.Mutex // serializes Send
	stream  discoverypb.AggregatedDiscoveryService_DeltaAggregatedResourcesServer
	cancel  chan struct{}
	subs    map[string]*subscription // by type; guarded by FakeXDS.mu
	dropped bool
}

type subscription struct {
	wildcard bool
	names    map[string]bool
}

// NewFakeXDS starts a fake istiod, plaintext or with TLS; it stops with the test.
func NewFakeXDS(t testing.TB, useTLS bool) *FakeXDS {
	t.Helper()
	f := &FakeXDS{resources: map[string]map[string]*discoverypb.Resource{}, streams: map[*fakeStream]struct{}{},
		changed: make(chan struct{})}
	opts := []grpc.ServerOption{istiodKeepalive}
	scheme := "http://127.0.0.1:"
	if useTLS {
		cert, pem, err := newServing()
		if err != nil {
			t.Fatal(err)
		}
		f.ServePEM, scheme, f.cert = pem, "https://localhost:", newServingCert(cert)
		opts = append(opts, grpc.Creds(credentials.NewTLS(f.cert.config())))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.Address = scheme + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	f.srv, f.lis = grpc.NewServer(opts...), &connListener{Listener: l}
	discoverypb.RegisterAggregatedDiscoveryServiceServer(f.srv, &adsService{f: f})
	go f.srv.Serve(f.lis)
	t.Cleanup(f.srv.Stop)
	return f
}

// Set adds or replaces a resource and pushes it to subscribed streams.
func (f *FakeXDS) Set(typeURL, name string, m proto.Message) {
	a, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	f.SetRaw(typeURL, name, a)
}

// SetRaw sets a resource as given (possibly malformed) and pushes it.
func (f *FakeXDS) SetRaw(typeURL, name string, a *anypb.Any) {
	f.mu.Lock()
	f.version++
	if f.resources[typeURL] == nil {
		f.resources[typeURL] = map[string]*discoverypb.Resource{}
	}
	r := &discoverypb.Resource{Name: name, Version: strconv.Itoa(f.version), Resource: a}
	f.resources[typeURL][name] = r
	f.mu.Unlock()
	f.push(typeURL, []*discoverypb.Resource{r}, nil)
}

// Remove deletes a resource and tells subscribed streams.
func (f *FakeXDS) Remove(typeURL, name string) {
	f.mu.Lock()
	delete(f.resources[typeURL], name)
	f.mu.Unlock()
	f.push(typeURL, nil, []string{name})
}

// DropStreams ends every open stream with an error (istiod restarting).
func (f *FakeXDS) DropStreams() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.streams {
		if !s.dropped {
			s.dropped = true
			close(s.cancel)
		}
	}
}

// Silent makes the server accept streams and requests but answer nothing.
func (f *FakeXDS) Silent(on bool) { f.mu.Lock(); f.silent = on; f.mu.Unlock() }

// Requests returns every request received, in order.
func (f *FakeXDS) Requests() []*discoverypb.DeltaDiscoveryRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*discoverypb.DeltaDiscoveryRequest(nil), f.requests...)
}

// Changed is closed when the next request arrives.
func (f *FakeXDS) Changed() <-chan struct{} { f.mu.Lock(); defer f.mu.Unlock(); return f.changed }

func (f *FakeXDS) push(typeURL string, upserts []*discoverypb.Resource, removed []string) {
	f.mu.Lock()
	var targets []*fakeStream
	for s := range f.streams {
		if sub := s.subs[typeURL]; sub != nil && !f.silent {
			targets = append(targets, s)
		}
	}
	f.mu.Unlock()
	for _, s := range targets {
		f.send(s, typeURL, f.filter(s, typeURL, upserts), removed)
	}
}

// filter keeps the resources a stream's subscription covers.
func (f *FakeXDS) filter(s *fakeStream, typeURL string, rs []*discoverypb.Resource) []*discoverypb.Resource {
	f.mu.Lock()
	defer f.mu.Unlock()
	sub := s.subs[typeURL]
	var out []*discoverypb.Resource
	for _, r := range rs {
		if sub.wildcard || sub.names[r.Name] {
			out = append(out, r)
		}
	}
	return out
}

func (f *FakeXDS) send(s *fakeStream, typeURL string, rs []*discoverypb.Resource, removed []string) {
	f.mu.Lock()
	f.nonce++
	nonce := strconv.Itoa(f.nonce)
	f.mu.Unlock()
	s.send.Lock()
	defer s.send.Unlock()
	s.stream.Send(&discoverypb.DeltaDiscoveryResponse{TypeUrl: typeURL, Resources: rs, RemovedResources: removed, Nonce: nonce})
}

type adsService struct {
	discoverypb.UnimplementedAggregatedDiscoveryServiceServer
	f *FakeXDS
}

func (a *adsService) DeltaAggregatedResources(st discoverypb.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	f := a.f
	s := &fakeStream{stream: st, cancel: make(chan struct{}), subs: map[string]*subscription{}}
	f.mu.Lock()
	f.streams[s] = struct{}{}
	f.mu.Unlock()
	defer func() { f.mu.Lock(); delete(f.streams, s); f.mu.Unlock() }()
	reqs := make(chan *discoverypb.DeltaDiscoveryRequest)
	errc := make(chan error, 1)
	go func() {
		for {
			req, err := st.Recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case reqs <- req:
			case <-st.Context().Done():
				return
			}
		}
	}()
	for {
		select {
		case req := <-reqs:
			f.onRequest(s, req)
		case err := <-errc:
			return err
		case <-st.Context().Done(): // the receiver may end this way without reporting
			return st.Context().Err()
		case <-s.cancel:
			return status.Error(codes.Unavailable, "fake istiod dropped the stream")
		}
	}
}

// onRequest records a request and answers a subscription with the matching resources:
// for a wildcard, everything newer than the client's versions and the removal of what
// it knows that no longer exists; for named (on-demand) resources, those names, or their
// removal when unknown.
func (f *FakeXDS) onRequest(s *fakeStream, req *discoverypb.DeltaDiscoveryRequest) {
	f.mu.Lock()
	f.requests = append(f.requests, req)
	close(f.changed)
	f.changed = make(chan struct{})
	if req.ResponseNonce != "" || f.silent {
		f.mu.Unlock()
		return
	}
	sub := s.subs[req.TypeUrl]
	first := sub == nil
	if first {
		sub = &subscription{wildcard: true, names: map[string]bool{}}
		s.subs[req.TypeUrl] = sub
	}
	for _, n := range req.ResourceNamesUnsubscribe {
		if n == "*" {
			sub.wildcard = false
		}
	}
	var asked []string
	for _, n := range req.ResourceNamesSubscribe {
		if n != "*" {
			sub.names[n] = true
			asked = append(asked, n)
		}
	}
	rs, removed := f.answerLocked(req, sub, first, asked)
	f.mu.Unlock()
	if first || len(asked) > 0 {
		f.send(s, req.TypeUrl, rs, removed)
	}
}

func (f *FakeXDS) answerLocked(req *discoverypb.DeltaDiscoveryRequest, sub *subscription, first bool, asked []string) ([]*discoverypb.Resource, []string) {
	var rs []*discoverypb.Resource
	var removed []string
	all := f.resources[req.TypeUrl]
	if first && sub.wildcard {
		for name, r := range all {
			if req.InitialResourceVersions[name] != r.Version {
				rs = append(rs, r)
			}
		}
		for name := range req.InitialResourceVersions {
			if all[name] == nil {
				removed = append(removed, name)
			}
		}
		return rs, removed
	}
	for _, n := range append(asked, keysOf(req.InitialResourceVersions)...) {
		if r := all[n]; r != nil {
			rs = append(rs, r)
		} else {
			removed = append(removed, n)
		}
	}
	return rs, removed
}

func keysOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// String describes a request for failure messages.
func RequestString(r *discoverypb.DeltaDiscoveryRequest) string {
	return fmt.Sprintf("{type %s subscribe %v unsubscribe %v initial %v nonce %q error %v}", r.TypeUrl,
		r.ResourceNamesSubscribe, r.ResourceNamesUnsubscribe, r.InitialResourceVersions, r.ResponseNonce, r.GetErrorDetail().GetMessage())
}
