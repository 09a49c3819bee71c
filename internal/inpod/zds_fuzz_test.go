//go:build linux

package inpod

import (
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"istio.io/istio/pkg/zdsapi"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/netns"
	"github.com/ztunnel-go/ztunnel/internal/readiness"
)

type noop struct{}

func (noop) Stop()                 {}
func (noop) Done() <-chan struct{} { return closed }

var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// FuzzZDSMessage: any packet istio-cni (or anything on its socket) sends, with or
// without a descriptor, is read over a real SOCK_SEQPACKET pair and handled: an ACK,
// a NACK with a reason, or a protocol error; never a panic, and no descriptor leaks
// (the fd count is checked by the package's tests).
func FuzzZDSMessage(f *testing.F) {
	add, _ := proto.Marshal(&zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Add{Add: &zdsapi.AddWorkload{
		Uid: "uid-1", WorkloadInfo: &zdsapi.WorkloadInfo{Name: "p", Namespace: "ns", ServiceAccount: "sa"}}}})
	del, _ := proto.Marshal(&zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Del{Del: &zdsapi.DelWorkload{Uid: "uid-1"}}})
	snap, _ := proto.Marshal(&zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_SnapshotSent{SnapshotSent: &zdsapi.SnapshotSent{}}})
	f.Add(add, true)
	f.Add(add, false)
	f.Add(del, true)
	f.Add(snap, false)
	f.Add([]byte{0xff, 0x01}, false)
	m := newManager(func(identity.Workload, *netns.NS) (Running, error) { return noop{}, nil }, logging.Discard(),
		readiness.New().Register("inpod"))
	defer m.stopAll()
	f.Fuzz(func(t *testing.T, packet []byte, withFD bool) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fds[0])
		rf := os.NewFile(uintptr(fds[1]), "zds")
		nc, err := net.FileConn(rf)
		rf.Close()
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		var oob []byte
		if withFD {
			ns, err := os.Open("/proc/self/ns/net")
			if err != nil {
				t.Fatal("opening our own netns:", err)
			}
			defer ns.Close()
			oob = unix.UnixRights(int(ns.Fd()))
		}
		if err := unix.Sendmsg(fds[0], packet, oob, nil, 0); err != nil {
			return // an empty packet with no fd, say
		}
		msg, err := (&conn{c: nc.(*net.UnixConn)}).read()
		if err != nil {
			return
		}
		if err := m.handle(msg); err == nil && msg.file != nil {
			m.del(msg.req.GetAdd().GetUid())
		}
	})
}
