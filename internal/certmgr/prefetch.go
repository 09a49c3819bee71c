package certmgr

import (
	"context"
	"sort"

	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// Snapshotter is the state store as the prefetcher sees it.
type Snapshotter interface {
	Snapshot() *state.Snapshot
}

// WatchState keeps the cache in step with the workloads on node, as Rust ztunnel does in
// shared mode: the identity of every workload there that speaks HBONE (or tunnels
// natively) is prefetched, and an identity is forgotten when its last such workload
// leaves. It returns when ctx ends.
func (m *Manager) WatchState(ctx context.Context, store Snapshotter, node string) {
	for {
		snap := store.Snapshot()
		m.Sync(LocalIdentities(snap, node))
		select {
		case <-snap.Stale():
		case <-ctx.Done():
			return
		}
	}
}

// LocalIdentities are the identities of the HBONE workloads on node, sorted.
func LocalIdentities(snap *state.Snapshot, node string) []identity.Identity {
	if node == "" {
		return nil
	}
	seen := map[identity.Identity]bool{}
	var out []identity.Identity
	for _, w := range snap.Workloads() {
		if w.Node != node || (w.TunnelProtocol != workloadapi.TunnelProtocol_HBONE && !w.NativeTunnel) {
			continue
		}
		id := identity.New(w.TrustDomain, w.Namespace, w.ServiceAccount)
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}
