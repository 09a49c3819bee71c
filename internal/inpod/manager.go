//go:build linux

package inpod

import (
	"errors"
	"log/slog"
	"os"
	"sync"

	"istio.io/istio/pkg/zdsapi"

	"github.com/ztunnel-go/ztunnel/internal/conns"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/metrics"
	"github.com/ztunnel-go/ztunnel/internal/netns"
	"github.com/ztunnel-go/ztunnel/internal/readiness"
)

// Running is a pod's proxy set. Stop begins ending it (listeners and connections) and
// returns at once; Done is closed once it has ended. A pod slow to end (a connection
// stuck in a syscall) must not hold up every other pod's Add and Del.
type Running interface {
	Stop()
	Done() <-chan struct{}
}

// Starter opens a pod's listeners inside ns and starts serving; an error (a port that
// cannot be bound, say) leaves the pod pending, to be retried.
type Starter func(pod identity.Workload, ns *netns.NS) (Running, error)

// podEntry is one pod's slot.
type podEntry struct {
	pod identity.Workload
	ns  *netns.NS
	// starting serialises this pod's start with its retries: held across Starter, never
	// with manager.mu.
	starting sync.Mutex
	running  Running // guarded by manager.mu; nil while pending
	seen     bool    // guarded by manager.mu; named (Add or Keep) since the connection's start
	removed  bool    // guarded by manager.mu; deleted while starting: stop what started
}

// manager holds the pods of ztunnel's node. Safe for concurrent use. Its mutex guards
// the table only: a pod's start (binding in its namespace) and end run outside it.
type manager struct {
	start Starter
	log   *slog.Logger
	ready *readiness.Task
	conns *conns.Registry          // pods Up or Pending, for the dump; nil-safe
	stats *metrics.WorkloadManager // nil-safe

	ending sync.WaitGroup // pods stopped and not yet ended; stopAll joins them

	mu       sync.Mutex
	pods     map[string]*podEntry // guarded by mu
	snapshot bool                 // guarded by mu; the connection's snapshot has been received
}

func newManager(start Starter, log *slog.Logger, ready *readiness.Task) *manager {
	return &manager{start: start, log: log, ready: ready, pods: map[string]*podEntry{}}
}

// handle applies one request; the error is the NACK text (nil: ACK). A protocol error
// means the connection must be dropped after the NACK.
func (m *manager) handle(msg message) error {
	defer m.count()
	switch p := msg.req.Payload.(type) {
	case *zdsapi.WorkloadRequest_Add:
		return m.add(p.Add, msg.file)
	case *zdsapi.WorkloadRequest_Keep:
		return m.keep(p.Keep.Uid)
	case *zdsapi.WorkloadRequest_Del:
		m.del(p.Del.Uid)
		return nil
	case *zdsapi.WorkloadRequest_SnapshotSent:
		return m.snapshotSent()
	}
	return errors.Join(errProtocol, errors.New("unknown request"))
}

// add starts a pod's proxies; its ACK waits for this pod's start only.
func (m *manager) add(a *zdsapi.AddWorkload, file *os.File) error {
	ns, err := netns.FromFile(file)
	if err != nil {
		file.Close()
		return err // NACK; the pods already served are not affected
	}
	info := a.GetWorkloadInfo()
	pod := identity.Workload{UID: a.Uid, Name: info.GetName(), Namespace: info.GetNamespace(), ServiceAccount: info.GetServiceAccount()}
	m.mu.Lock()
	old := m.pods[a.Uid]
	if old != nil && old.ns.SameAs(ns) && old.running != nil { // a replay of a pod already served
		old.seen = true
		m.mu.Unlock()
		ns.Close()
		return nil
	}
	e := &podEntry{pod: pod, ns: ns, seen: true}
	m.pods[a.Uid] = e
	if old != nil { // same uid, new namespace: replace
		m.removeLocked(old)
	}
	e.starting.Lock() // before the table is unlocked: a retry waits for this start
	m.mu.Unlock()
	defer e.starting.Unlock()
	return m.startEntry(e)
}

// startEntry runs the Starter of e, whose starting lock the caller holds.
func (m *manager) startEntry(e *podEntry) error {
	m.mu.Lock()
	removed := e.removed
	m.mu.Unlock()
	if removed { // deleted before a retry came to it
		e.ns.Close()
		return nil
	}
	r, err := m.start(e.pod, e.ns)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if e.removed {
			e.ns.Close()
			return err
		}
		m.conns.SetPod(e.pod, false)
		m.log.Warn("pod proxy failed to start; will retry", "pod", e.pod.Namespace+"/"+e.pod.Name, "uid", e.pod.UID, "error", err)
		return err
	}
	m.stats.Started()
	m.log.Info("pod proxy started", "pod", e.pod.Namespace+"/"+e.pod.Name, "uid", e.pod.UID)
	e.running = r
	if e.removed { // deleted while it started
		m.endLocked(e)
		return nil
	}
	m.conns.SetPod(e.pod, true)
	return nil
}

func (m *manager) keep(uid string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.snapshot {
		return errors.Join(errProtocol, errors.New("Keep after the snapshot"))
	}
	if e := m.pods[uid]; e != nil {
		e.seen = true
	}
	return nil
}

func (m *manager) del(uid string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.pods[uid]; e != nil {
		delete(m.pods, uid)
		m.removeLocked(e)
	}
}

// snapshotSent ends the replay: pods ztunnel still runs that istio-cni did not name are
// gone, and are drained.
func (m *manager) snapshotSent() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.snapshot {
		return errors.Join(errProtocol, errors.New("second snapshot on one connection"))
	}
	m.snapshot = true
	for uid, e := range m.pods {
		if !e.seen {
			delete(m.pods, uid)
			m.removeLocked(e)
		}
	}
	m.updateReadyLocked()
	return nil
}

// newConnection starts a replay: every pod must be named again.
func (m *manager) newConnection() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.snapshot = false
	for _, e := range m.pods {
		e.seen = false
	}
}

// retryPending tries again to start the pods whose start failed, one at a time and
// outside the table's lock; a pod whose start is under way is skipped.
func (m *manager) retryPending() {
	defer m.count()
	m.mu.Lock()
	var pending []*podEntry
	for _, e := range m.pods {
		if e.running == nil && e.starting.TryLock() {
			pending = append(pending, e)
		}
	}
	m.mu.Unlock()
	for _, e := range pending {
		m.startEntry(e)
		e.starting.Unlock()
	}
	m.mu.Lock()
	m.updateReadyLocked()
	m.mu.Unlock()
}

func (m *manager) updateReadyLocked() {
	if !m.snapshot || m.ready == nil {
		return
	}
	for _, e := range m.pods {
		if e.running == nil {
			return
		}
	}
	m.ready.Done()
}

// removeLocked forgets e, which the caller took out of the table: its proxies are
// stopped now, or when their start (under way) returns.
func (m *manager) removeLocked(e *podEntry) {
	m.conns.RemovePod(e.pod.UID)
	e.removed = true
	if e.running != nil {
		m.endLocked(e)
	} else if e.starting.TryLock() { // pending, and no start under way: nothing runs
		e.starting.Unlock()
		e.ns.Close()
	} // else startEntry ends what it started
}

// endLocked stops e's proxies; their end is awaited apart (ending), and only then is the
// pod's namespace closed: the proxies' sockets are made in it until they are gone.
func (m *manager) endLocked(e *podEntry) {
	r := e.running
	e.running = nil
	r.Stop()
	m.stats.Stopped()
	m.ending.Go(func() {
		<-r.Done()
		e.ns.Close()
		m.log.Info("pod proxy stopped", "pod", e.pod.Namespace+"/"+e.pod.Name, "uid", e.pod.UID)
	})
}

// count publishes how many pods are served and pending.
func (m *manager) count() {
	m.mu.Lock()
	defer m.mu.Unlock()
	active := 0
	for _, e := range m.pods {
		if e.running != nil {
			active++
		}
	}
	m.stats.Set(active, len(m.pods)-active)
}

// stopAll ends every pod (shutdown) and waits until all have ended.
func (m *manager) stopAll() {
	m.mu.Lock()
	for uid, e := range m.pods {
		delete(m.pods, uid)
		m.removeLocked(e)
	}
	m.mu.Unlock()
	m.count()
	m.ending.Wait()
}
