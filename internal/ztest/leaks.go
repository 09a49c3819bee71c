package ztest

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// NoLeaks checks, once the test and every cleanup registered after this call are done,
// that the test left no goroutine and no file descriptor behind: the adversarial suite's
// promise that an attack or a fault costs nothing once its connections close. Call it
// first in a test, so that its check runs last. Descriptors get a few seconds to go (a
// closed socket is released asynchronously), goroutines the same through goleak's own
// retries. A leaked socket is named by its TCP addresses, to find its owner.
func NoLeaks(t testing.TB) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	before := openFDs()
	t.Cleanup(func() {
		goleak.VerifyNone(t, ignore)
		var leaked []string
		for range 500 {
			if leaked = newFDs(before, openFDs()); len(leaked) == 0 {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Errorf("file descriptors left open by the test: %s", strings.Join(leaked, ", "))
	})
}

// openFDs maps this process's open descriptors to what they are.
func openFDs() map[string]string {
	ents, _ := os.ReadDir("/proc/self/fd")
	fds := map[string]string{}
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			fds[e.Name()] = target
		}
	}
	return fds
}

// newFDs describes the descriptors in after that were not in before.
func newFDs(before, after map[string]string) []string {
	home, _ := os.Readlink("/proc/self/ns/net")
	var out []string
	for fd, target := range after {
		// Pipes are Go's splice(2) pool (kept in a sync.Pool), anon inodes the runtime's
		// poller, and the home netns is held open by package netns for the process's
		// life: none of them is the test's. A pod's netns left open is.
		if before[fd] == target || target == home || strings.HasPrefix(target, "pipe:") ||
			strings.HasPrefix(target, "anon_inode:") {
			continue
		}
		out = append(out, fmt.Sprintf("fd %s %s", fd, describeSocket(target)))
	}
	slices.Sort(out)
	return out
}

// describeSocket adds a TCP socket's addresses (hex, as /proc/net/tcp has them).
func describeSocket(target string) string {
	inode, ok := strings.CutPrefix(target, "socket:[")
	if !ok {
		return target
	}
	inode = strings.TrimSuffix(inode, "]")
	for _, table := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		data, _ := os.ReadFile(table)
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) > 9 && f[9] == inode {
				return fmt.Sprintf("%s (tcp %s -> %s state %s)", target, f[1], f[2], f[3])
			}
		}
	}
	return target
}
