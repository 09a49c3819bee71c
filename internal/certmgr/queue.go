package certmgr

import "container/heap"

// Priority orders fetches when more are wanted than may run at once.
type Priority int

const (
	// Background is a scheduled renewal or retry.
	Background Priority = iota
	// Warmup is a prefetch for a workload that arrived on the node.
	Warmup
	// RealTime is a connection waiting for the certificate.
	RealTime
)

func (p Priority) String() string {
	return [...]string{"Background", "Warmup", "RealTime"}[p]
}

// queue is a max-heap of entries by priority, then first come first served.
// It belongs to the Manager and is guarded by its mutex.
type queue []*entry

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if q[i].prio != q[j].prio {
		return q[i].prio > q[j].prio
	}
	return q[i].seq < q[j].seq
}
func (q queue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *queue) Push(x any) {
	e := x.(*entry)
	e.index = len(*q)
	*q = append(*q, e)
}
func (q *queue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	e.index = -1
	return e
}

// push queues e, or raises its priority if it is already queued.
func (q *queue) push(e *entry, p Priority, seq uint64) {
	if e.index >= 0 {
		if p > e.prio {
			e.prio = p
			heap.Fix(q, e.index)
		}
		return
	}
	e.prio, e.seq = p, seq
	heap.Push(q, e)
}

func (q *queue) remove(e *entry) {
	if e.index >= 0 {
		heap.Remove(q, e.index)
	}
}

func (q *queue) pop() *entry { return heap.Pop(q).(*entry) }
