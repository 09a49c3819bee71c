//go:build linux

package ztest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	"istio.io/istio/pkg/zdsapi"
)

// FakeCNI is istio-cni's node agent as ztunnel sees it: a ZDS server on a unix
// SOCK_SEQPACKET socket that replays its pods (each with its netns fd) to every new
// ztunnel connection, sends SnapshotSent, then pushes adds and deletes as the test asks.
// Like istio-cni's connMgr (cni/pkg/nodeagent/ztunnelserver.go) it keeps every ztunnel
// connected, as during a DaemonSet's rolling update: adds go to the newest connection,
// deletes to all of them, and a connection is dropped once its ztunnel has closed it.
type FakeCNI struct {
	Path string
	l    *net.UnixListener

	mu    sync.Mutex // guards the fields below; held for a whole request/ack exchange
	pods  map[string]cniPod
	order []string
	conns []*net.UnixConn // oldest first
	acks  []string        // every answer received: "" for ACK, the text for a NACK
	wg    sync.WaitGroup
}

type cniPod struct {
	info   *zdsapi.WorkloadInfo
	nsPath string
}

// NewFakeCNI listens at path until the test ends.
func NewFakeCNI(t testing.TB, path string) *FakeCNI {
	t.Helper()
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	f := &FakeCNI{Path: path, l: l, pods: map[string]cniPod{}}
	f.wg.Go(f.accept)
	t.Cleanup(func() {
		l.Close()
		f.Reconnect()
		f.wg.Wait()
	})
	return f
}

func (f *FakeCNI) accept() {
	for {
		c, err := f.l.AcceptUnix()
		if err != nil {
			return
		}
		f.serve(c)
	}
}

// serve takes over a new ztunnel connection: Hello, the replay, the snapshot.
func (f *FakeCNI) serve(c *net.UnixConn) {
	buf := make([]byte, 1024)
	n, err := c.Read(buf)
	hello := &zdsapi.ZdsHello{}
	if err != nil || proto.Unmarshal(buf[:n], hello) != nil || hello.Version != zdsapi.Version_V1 {
		c.Close()
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns = append(f.conns, c)
	for _, uid := range f.order {
		p := f.pods[uid]
		f.exchangeLocked(c, &zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Add{Add: &zdsapi.AddWorkload{Uid: uid, WorkloadInfo: p.info}}}, p.nsPath)
	}
	f.exchangeLocked(c, &zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_SnapshotSent{SnapshotSent: &zdsapi.SnapshotSent{}}}, "")
}

// AddPod registers a pod and, if ztunnel is connected, sends it; the answer is returned
// ("" for an ACK).
func (f *FakeCNI) AddPod(uid, ns, name, sa, nsPath string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	info := &zdsapi.WorkloadInfo{Name: name, Namespace: ns, ServiceAccount: sa}
	if _, ok := f.pods[uid]; !ok {
		f.order = append(f.order, uid)
	}
	f.pods[uid] = cniPod{info: info, nsPath: nsPath}
	c := f.latestLocked()
	if c == nil {
		return "", nil
	}
	return f.exchangeLocked(c, &zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Add{Add: &zdsapi.AddWorkload{Uid: uid, WorkloadInfo: info}}}, nsPath)
}

// DelPod removes a pod and tells every connected ztunnel; the answer is the newest's.
func (f *FakeCNI) DelPod(uid string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgetLocked(uid)
	f.pruneLocked()
	if len(f.conns) == 0 {
		return "", errors.New("ztunnel is not connected")
	}
	var answer string
	var errs []error
	for _, c := range slices.Clone(f.conns) {
		a, err := f.exchangeLocked(c, &zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Del{Del: &zdsapi.DelWorkload{Uid: uid}}}, "")
		answer, errs = a, append(errs, err)
	}
	return answer, errors.Join(errs...)
}

// SendRaw sends bytes with the given file descriptors (for malformed-input tests) and
// returns ztunnel's answer.
func (f *FakeCNI) SendRaw(b []byte, files ...*os.File) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.latestLocked()
	if c == nil {
		return "", errors.New("ztunnel is not connected")
	}
	var fds []int
	for _, fl := range files {
		fds = append(fds, int(fl.Fd()))
	}
	return f.sendLocked(c, b, fds)
}

// Acks returns every answer received.
func (f *FakeCNI) Acks() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.acks...)
}

// Connected reports whether a ztunnel is connected.
func (f *FakeCNI) Connected() bool { return f.Connections() > 0 }

// Connections counts the ztunnels connected, after dropping those that went away.
func (f *FakeCNI) Connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pruneLocked()
	return len(f.conns)
}

// latestLocked is the newest live connection, or nil.
func (f *FakeCNI) latestLocked() *net.UnixConn {
	f.pruneLocked()
	if len(f.conns) == 0 {
		return nil
	}
	return f.conns[len(f.conns)-1]
}

// pruneLocked drops the connections whose ztunnel closed them, found as istio-cni's
// keepalive finds them: a short read that must time out, since ztunnel only answers.
func (f *FakeCNI) pruneLocked() {
	buf := make([]byte, 64)
	for _, c := range slices.Clone(f.conns) {
		c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		_, err := c.Read(buf)
		c.SetReadDeadline(time.Time{})
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			f.dropLocked(c)
		}
	}
}

func (f *FakeCNI) exchangeLocked(c *net.UnixConn, req *zdsapi.WorkloadRequest, nsPath string) (string, error) {
	b, err := proto.Marshal(req)
	if err != nil {
		return "", err
	}
	var fds []int
	if nsPath != "" {
		ns, err := os.Open(nsPath)
		if err != nil {
			return "", err
		}
		defer ns.Close()
		fds = []int{int(ns.Fd())}
	}
	return f.sendLocked(c, b, fds)
}

func (f *FakeCNI) sendLocked(c *net.UnixConn, b []byte, fds []int) (string, error) {
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := c.WriteMsgUnix(b, oob, nil); err != nil {
		f.dropLocked(c)
		return "", fmt.Errorf("sending to ztunnel: %w", err)
	}
	buf := make([]byte, 1024)
	n, err := c.Read(buf)
	if err != nil {
		f.dropLocked(c)
		return "", fmt.Errorf("reading ztunnel's answer: %w", err)
	}
	resp := &zdsapi.WorkloadResponse{}
	if err := proto.Unmarshal(buf[:n], resp); err != nil {
		return "", err
	}
	answer := resp.GetAck().GetError()
	f.acks = append(f.acks, answer)
	return answer, nil
}

// Forget drops a pod from the fake without telling ztunnel, as if istio-cni restarted
// without it.
func (f *FakeCNI) Forget(uid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgetLocked(uid)
}

func (f *FakeCNI) forgetLocked(uid string) {
	delete(f.pods, uid)
	for i, u := range f.order {
		if u == uid {
			f.order = append(f.order[:i], f.order[i+1:]...)
			break
		}
	}
}

// Reconnect cuts every connection; ztunnel reconnects and gets a new replay.
func (f *FakeCNI) Reconnect() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range slices.Clone(f.conns) {
		f.dropLocked(c)
	}
}

func (f *FakeCNI) dropLocked(c *net.UnixConn) {
	c.Close()
	f.conns = slices.DeleteFunc(f.conns, func(x *net.UnixConn) bool { return x == c })
}
