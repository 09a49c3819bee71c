//go:build linux

package netns

import (
	"fmt"
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// FromFile takes ownership of a namespace file (such as one received over ZDS), after
// checking that it is a network namespace.
func FromFile(f *os.File) (*NS, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("stat netns: %w", err)
	}
	kind, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	if err != nil || kind != unix.CLONE_NEWNET {
		return nil, ErrNotNetNS
	}
	return &NS{f: f, dev: uint64(st.Dev), ino: st.Ino}, nil
}

// home is the namespace every unlocked thread of this process is in, opened once (it
// was an open and a close per socket). It holds because Go starts new threads from a
// clean template thread, never from one locked inside a pod's namespace, and a thread
// that fails to come back is discarded.
var home = sync.OnceValues(func() (*os.File, error) { return os.Open("/proc/thread-self/ns/net") })

// Do runs fn on a thread that has entered the namespace. The thread returns to its
// namespace afterwards; if that fails, it stays locked and dies with its goroutine
// rather than serve other goroutines in the wrong namespace.
func (n *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- n.do(fn) }() // a fresh goroutine: its thread can be discarded
	return <-errc
}

func (n *NS) do(fn func() error) error {
	runtime.LockOSThread()
	orig, err := home()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("opening current netns: %w", err)
	}
	if err := unix.Setns(int(n.f.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering %s: %w", n, err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("leaving %s (thread discarded): %w", n, err) // stays locked: the thread exits
	}
	runtime.UnlockOSThread()
	return ferr
}
