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

// Running is a pod's proxy set; Stop ends it (listeners and connections) and waits.
type Running interface{ Stop() }

// Starter opens a pod's listeners inside ns and starts serving; an error (a port that
// cannot be bound, say) leaves the pod pending, to be retried.
type Starter func(pod identity.Workload, ns *netns.NS) (Running, error)

// podEntry is one pod's slot. Guarded by Manager.mu.
type podEntry struct {
	pod     identity.Workload
	ns      *netns.NS
	running Running // nil while pending
	err     error   // why it is pending
	seen    bool    // named (Add or Keep) since the current connection's start
}

// manager holds the pods of ztunnel's node. Safe for concurrent use.
type manager struct {
	start Starter
	log   *slog.Logger
	ready *readiness.Task
	conns *conns.Registry          // pods Up or Pending, for the dump; nil-safe
	stats *metrics.WorkloadManager // nil-safe

	mu       sync.Mutex
	pods     map[string]*podEntry
	snapshot bool // the current connection's snapshot has been received
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

func (m *manager) add(a *zdsapi.AddWorkload, file *os.File) error {
	ns, err := netns.FromFile(file)
	if err != nil {
		file.Close()
		return err // NACK; the pods already served are not affected
	}
	info := a.GetWorkloadInfo()
	pod := identity.Workload{UID: a.Uid, Name: info.GetName(), Namespace: info.GetNamespace(), ServiceAccount: info.GetServiceAccount()}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.pods[a.Uid]; e != nil {
		if e.ns.SameAs(ns) && e.running != nil { // a replay of a pod already served
			ns.Close()
			e.seen = true
			return nil
		}
		m.stopLocked(e) // same uid, new namespace: replace
	}
	e := &podEntry{pod: pod, ns: ns, seen: true}
	m.pods[a.Uid] = e
	return m.startLocked(e)
}

func (m *manager) startLocked(e *podEntry) error {
	r, err := m.start(e.pod, e.ns)
	m.conns.SetPod(e.pod, err == nil)
	if err != nil {
		e.err = err
		m.log.Warn("pod proxy failed to start; will retry", "pod", e.pod.Namespace+"/"+e.pod.Name, "uid", e.pod.UID, "error", err)
		return err
	}
	e.running, e.err = r, nil
	m.stats.Started()
	m.log.Info("pod proxy started", "pod", e.pod.Namespace+"/"+e.pod.Name, "uid", e.pod.UID)
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
		m.stopLocked(e)
		delete(m.pods, uid)
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
			m.stopLocked(e)
			delete(m.pods, uid)
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

// retryPending tries again to start the pods whose start failed.
func (m *manager) retryPending() {
	defer m.count()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.pods {
		if e.running == nil {
			m.startLocked(e)
		}
	}
	m.updateReadyLocked()
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

func (m *manager) stopLocked(e *podEntry) {
	m.conns.RemovePod(e.pod.UID)
	if e.running != nil {
		e.running.Stop()
		e.running = nil
		m.stats.Stopped()
		m.log.Info("pod proxy stopped", "pod", e.pod.Namespace+"/"+e.pod.Name, "uid", e.pod.UID)
	}
	e.ns.Close()
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

// stopAll ends every pod (shutdown).
func (m *manager) stopAll() {
	defer m.count()
	m.mu.Lock()
	defer m.mu.Unlock()
	for uid, e := range m.pods {
		m.stopLocked(e)
		delete(m.pods, uid)
	}
}
