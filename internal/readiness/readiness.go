// Package readiness tracks what ztunnel still waits for before it can serve traffic, and
// answers the kubelet's probe on 15021 the way Rust ztunnel does.
package readiness

import (
	"net/http"
	"sort"
	"strings"
	"sync"
)

// Tracker is the set of pending start-up tasks. Safe for concurrent use.
type Tracker struct {
	mu      sync.Mutex
	pending map[string]int // guarded by mu: task name → registrations not yet done
}

// New returns a tracker with nothing pending.
func New() *Tracker { return &Tracker{pending: map[string]int{}} }

// Task is one registration; Done clears it, once.
type Task struct {
	t    *Tracker
	name string
	once sync.Once
}

// Register adds a pending task; ztunnel is not ready until every task is Done.
func (t *Tracker) Register(name string) *Task {
	t.mu.Lock()
	t.pending[name]++
	t.mu.Unlock()
	return &Task{t: t, name: name}
}

// Done marks the task complete; later calls do nothing.
func (k *Task) Done() {
	k.once.Do(func() {
		k.t.mu.Lock()
		defer k.t.mu.Unlock()
		if k.t.pending[k.name]--; k.t.pending[k.name] <= 0 {
			delete(k.t.pending, k.name)
		}
	})
}

// Pending lists the names still waited for, sorted.
func (t *Tracker) Pending() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	names := make([]string, 0, len(t.pending))
	for n := range t.pending {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ServeHTTP answers GET /healthz/ready: 200 "ready", or 500 naming what is pending.
func (t *Tracker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/healthz/ready" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if p := t.Pending(); len(p) > 0 {
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte("not ready, pending: " + strings.Join(p, ", ") + "\n"))
		return
	}
	w.Write([]byte("ready\n"))
}
