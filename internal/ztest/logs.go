package ztest

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// LogBuffer collects log output written from many goroutines, for tests that assert on
// the log lines ztunnel writes.
type LogBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// WaitFor reports whether s appears within a bounded wait (a log line may be written
// just after the event a test observes).
func (l *LogBuffer) WaitFor(s string) bool {
	for range 300 {
		if strings.Contains(l.String(), s) {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// Eventually polls cond a bounded number of times and fails the test if it never holds:
// a hang guard for asynchronous effects, not a timing assertion.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
