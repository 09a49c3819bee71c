package dns

import (
	"sync"
	"time"
)

// historyLen is how many recent queries are kept per client: enough to see what a pod
// just asked, small enough that a thousand pods cost little.
const historyLen = 32

// Query is one answered query, as /debug/dns shows it.
type Query struct {
	Time     time.Time `json:"time"`
	Name     string    `json:"name"`
	Type     string    `json:"type"`
	Protocol string    `json:"protocol"`
	// Result: "mesh" (answered from the mesh's state), "forwarded", or what went wrong.
	Result  string `json:"result"`
	Rcode   string `json:"rcode"`
	Answers int    `json:"answers"`
	Matched string `json:"matched,omitempty"` // the mesh host that answered
	Cname   string `json:"cname,omitempty"`   // the search-stripped name the answer points to
	Server  string `json:"server,omitempty"`  // the upstream that answered
}

// ClientQueries are one client's recent queries, newest last.
type ClientQueries struct {
	Workload string  `json:"workload,omitempty"` // namespace/name, when known
	Queries  []Query `json:"queries"`
}

// History keeps the last queries of each client, shared by every DNS server of the
// process and read by the admin server. Pods that are gone are dropped by Forget.
type History struct {
	mu      sync.Mutex // guards clients
	clients map[string]*ring
}

type ring struct {
	workload string
	q        [historyLen]Query
	n        int // queries recorded
}

// NewHistory returns an empty history.
func NewHistory() *History { return &History{clients: map[string]*ring{}} }

// Record adds q to client key's history. A nil History records nothing.
func (h *History) Record(key, workload string, q Query) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.clients[key]
	if r == nil {
		r = &ring{}
		h.clients[key] = r
	}
	if workload != "" {
		r.workload = workload
	}
	r.q[r.n%historyLen] = q
	r.n++
}

// Forget drops a client's history (its pod was removed).
func (h *History) Forget(key string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, key)
}

// Snapshot copies every client's queries, oldest first.
func (h *History) Snapshot() map[string]ClientQueries {
	out := map[string]ClientQueries{}
	if h == nil {
		return out
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for key, r := range h.clients {
		n := min(r.n, historyLen)
		qs := make([]Query, 0, n)
		for i := r.n - n; i < r.n; i++ {
			qs = append(qs, r.q[i%historyLen])
		}
		out[key] = ClientQueries{Workload: r.workload, Queries: qs}
	}
	return out
}
