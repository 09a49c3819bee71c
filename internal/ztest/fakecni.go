//go:build linux

package ztest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	"istio.io/istio/pkg/zdsapi"
)

// FakeCNI is istio-cni's node agent as ztunnel sees it: a ZDS server on a unix
// SOCK_SEQPACKET socket that replays its pods (each with its netns fd) to every new
// ztunnel connection, sends SnapshotSent, then pushes adds and deletes as the test asks.
type FakeCNI struct {
	Path string
	l    *net.UnixListener

	mu    sync.Mutex // guards the fields below; held for a whole request/ack exchange
	pods  map[string]cniPod
	order []string
	conn  *net.UnixConn
	acks  []string // every answer received: "" for ACK, the text for a NACK
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
		f.mu.Lock()
		if f.conn != nil {
			f.conn.Close()
		}
		f.mu.Unlock()
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
	if f.conn != nil {
		f.conn.Close()
	}
	f.conn = c
	for _, uid := range f.order {
		p := f.pods[uid]
		f.exchangeLocked(&zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Add{Add: &zdsapi.AddWorkload{Uid: uid, WorkloadInfo: p.info}}}, p.nsPath)
	}
	f.exchangeLocked(&zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_SnapshotSent{SnapshotSent: &zdsapi.SnapshotSent{}}}, "")
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
	if f.conn == nil {
		return "", nil
	}
	return f.exchangeLocked(&zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Add{Add: &zdsapi.AddWorkload{Uid: uid, WorkloadInfo: info}}}, nsPath)
}

// DelPod removes a pod and tells ztunnel.
func (f *FakeCNI) DelPod(uid string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgetLocked(uid)
	if f.conn == nil {
		return "", errors.New("ztunnel is not connected")
	}
	return f.exchangeLocked(&zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Del{Del: &zdsapi.DelWorkload{Uid: uid}}}, "")
}

// SendRaw sends bytes with the given file descriptors (for malformed-input tests) and
// returns ztunnel's answer.
func (f *FakeCNI) SendRaw(b []byte, files ...*os.File) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn == nil {
		return "", errors.New("ztunnel is not connected")
	}
	var fds []int
	for _, fl := range files {
		fds = append(fds, int(fl.Fd()))
	}
	return f.sendLocked(b, fds)
}

// Acks returns every answer received.
func (f *FakeCNI) Acks() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.acks...)
}

// Connected reports whether a ztunnel is connected.
func (f *FakeCNI) Connected() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.conn != nil }

func (f *FakeCNI) exchangeLocked(req *zdsapi.WorkloadRequest, nsPath string) (string, error) {
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
	return f.sendLocked(b, fds)
}

func (f *FakeCNI) sendLocked(b []byte, fds []int) (string, error) {
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := f.conn.WriteMsgUnix(b, oob, nil); err != nil {
		f.dropLocked()
		return "", fmt.Errorf("sending to ztunnel: %w", err)
	}
	buf := make([]byte, 1024)
	n, err := f.conn.Read(buf)
	if err != nil {
		f.dropLocked()
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

// Reconnect cuts the current connection; ztunnel reconnects and gets a new replay.
func (f *FakeCNI) Reconnect() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropLocked()
}

func (f *FakeCNI) dropLocked() {
	if f.conn != nil {
		f.conn.Close()
		f.conn = nil
	}
}
