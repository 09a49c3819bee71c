//go:build linux

// Package inpod is ztunnel's side of istio-cni's in-pod redirection: a client of the ZDS
// protocol (one protobuf per SOCK_SEQPACKET packet, a pod's network namespace passed as
// a file descriptor with its Add) and the manager of one proxy set per pod, with its
// listeners inside the pod's namespace.
package inpod

import (
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	"istio.io/istio/pkg/zdsapi"
)

// maxMessage is Rust ztunnel's read buffer: a larger packet is a protocol error.
const maxMessage = 1024

// conn is one ZDS connection to istio-cni. It is used by one goroutine.
type conn struct{ c *net.UnixConn }

func dial(path string) (*conn, error) {
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("connecting to istio-cni at %s: %w", path, err)
	}
	return &conn{c: c}, nil
}

func (z *conn) close() error { return z.c.Close() }

func (z *conn) send(m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	_, err = z.c.Write(b)
	return err
}

func (z *conn) hello() error {
	return z.send(&zdsapi.ZdsHello{Version: zdsapi.Version_V1})
}

// ack answers the last request: an empty error is an ACK, anything else a NACK.
func (z *conn) ack(err error) error {
	a := &zdsapi.Ack{}
	if err != nil {
		a.Error = err.Error()
	}
	return z.send(&zdsapi.WorkloadResponse{Payload: &zdsapi.WorkloadResponse_Ack{Ack: a}})
}

// errProtocol is a message that breaks the protocol: ztunnel NACKs and reconnects.
var errProtocol = errors.New("ZDS protocol error")

// message is one request and the namespace file that came with it (Add only).
type message struct {
	req  *zdsapi.WorkloadRequest
	file *os.File
}

// read returns the next request. A request with the wrong number of descriptors is an
// error, and every descriptor received is closed unless handed over with the message.
func (z *conn) read() (message, error) {
	buf := make([]byte, maxMessage)
	oob := make([]byte, unix.CmsgSpace(4*4)) // room to notice more than one fd
	n, oobn, flags, _, err := z.c.ReadMsgUnix(buf, oob)
	if err != nil {
		return message{}, err
	}
	files, ferr := parseFDs(oob[:oobn])
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 || ferr != nil {
		closeAll()
		return message{}, fmt.Errorf("%w: truncated message or bad control data", errProtocol)
	}
	req := &zdsapi.WorkloadRequest{}
	if err := proto.Unmarshal(buf[:n], req); err != nil {
		closeAll()
		return message{}, fmt.Errorf("%w: undecodable message: %v", errProtocol, err)
	}
	if _, isAdd := req.Payload.(*zdsapi.WorkloadRequest_Add); isAdd != (len(files) == 1) {
		closeAll()
		return message{req: req}, fmt.Errorf("%w: got %d file descriptors, an Add needs exactly one and nothing else any", errProtocol, len(files))
	}
	m := message{req: req}
	if len(files) == 1 {
		m.file = files[0]
	}
	return m, nil
}

func parseFDs(oob []byte) ([]*os.File, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var files []*os.File
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			return files, err
		}
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), "netns"))
		}
	}
	return files, nil
}
