// Package netns runs code inside another network namespace. Only socket creation needs
// it: a socket stays in the namespace it was created in, so the thread-locked section is
// as small as the call that creates the socket.
package netns

import (
	"errors"
	"fmt"
	"os"
)

// NS is an open network namespace. Its file keeps the namespace alive.
type NS struct {
	f *os.File
	// dev and ino identify the namespace: two NS with equal ids are the same namespace.
	dev, ino uint64
}

// ErrNotNetNS is a file that is not a network namespace.
var ErrNotNetNS = errors.New("not a network namespace")

// Open opens a namespace by path (/var/run/netns/<name>, /proc/<pid>/ns/net).
func Open(path string) (*NS, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening netns: %w", err)
	}
	ns, err := FromFile(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return ns, nil
}

// SameAs reports whether both refer to one namespace.
func (n *NS) SameAs(o *NS) bool { return n.dev == o.dev && n.ino == o.ino }

// Close releases the namespace file.
func (n *NS) Close() error { return n.f.Close() }

func (n *NS) String() string { return fmt.Sprintf("netns(dev=%d,ino=%d)", n.dev, n.ino) }
