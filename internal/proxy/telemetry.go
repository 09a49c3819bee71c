package proxy

import (
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/conns"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/metrics"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// record is what telemetry knows of one proxied connection.
type record struct {
	start     time.Time
	inbound   bool
	src       netip.AddrPort // the client
	dst       netip.AddrPort // the actual L4 peer: a ztunnel's 15008, or the app
	hboneAddr string         // the CONNECT authority, when tunnelled
	origDst   string         // what the client asked for (outbound), or the service (inbound)
	srcW      *state.Workload
	dstW      *state.Workload
	svc       *state.Service
	srcID     identity.Identity
	dstID     identity.Identity
	mtls      bool
	baggage   string      // the peer's description, for a peer not known locally
	denied    atomic.Bool // closed by late enforcement: its response flag is DENY
}

// labels are the Istio metric labels, as the reporter (this side) sees the connection.
func (r *record) labels() *metrics.ConnLabels {
	l := &metrics.ConnLabels{Reporter: "source", MutualTLS: r.mtls}
	if r.inbound {
		l.Reporter = "destination"
	}
	if w := r.srcW; w != nil {
		l.SrcWorkload, l.SrcCanonicalService, l.SrcCanonicalRevision = w.WorkloadName, w.CanonicalName, w.CanonicalRevision
		l.SrcNS, l.SrcApp, l.SrcVersion, l.SrcCluster = w.Namespace, w.CanonicalName, w.CanonicalRevision, w.ClusterId
		l.SrcRegion, l.SrcZone = w.GetLocality().GetRegion(), w.GetLocality().GetZone()
	} else if r.baggage != "" && r.inbound {
		d := fromBaggage(r.baggage)
		l.SrcCluster, l.SrcNS, l.SrcWorkload, l.SrcRegion, l.SrcZone = d.cluster, d.ns, d.workload, d.region, d.zone
		l.SrcCanonicalService, l.SrcApp, l.SrcCanonicalRevision, l.SrcVersion = d.app, d.app, d.version, d.version
	}
	if w := r.dstW; w != nil {
		l.DstWorkload, l.DstCanonicalService, l.DstCanonicalRevision = w.WorkloadName, w.CanonicalName, w.CanonicalRevision
		l.DstNS, l.DstApp, l.DstVersion, l.DstCluster = w.Namespace, w.CanonicalName, w.CanonicalRevision, w.ClusterId
		l.DstRegion, l.DstZone = w.GetLocality().GetRegion(), w.GetLocality().GetZone()
	} else if r.baggage != "" && !r.inbound {
		d := fromBaggage(r.baggage)
		l.DstCluster, l.DstNS, l.DstWorkload, l.DstRegion, l.DstZone = d.cluster, d.ns, d.workload, d.region, d.zone
		l.DstCanonicalService, l.DstApp, l.DstCanonicalRevision, l.DstVersion = d.app, d.app, d.version, d.version
	}
	if s := r.svc; s != nil {
		l.DstService, l.DstServiceNS, l.DstServiceName = s.Hostname, s.Namespace, s.Name
	}
	if !r.srcID.IsZero() {
		l.SrcPrincipal = r.srcID.String()
	}
	if !r.dstID.IsZero() {
		l.DstPrincipal = r.dstID.String()
	}
	return l
}

// described is a workload as its ztunnel's baggage tells it (Rust's DerivedWorkload).
type described struct{ cluster, ns, workload, app, version, region, zone string }

// fromBaggage reads the baggage a peer's ztunnel sent: on a CONNECT, the source; on its
// answer, the destination (ENABLE_RESPONSE_BAGGAGE). It describes a peer this ztunnel
// does not know (another cluster's).
func fromBaggage(baggage string) described {
	var d described
	for _, item := range strings.Split(baggage, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(item), "=")
		switch {
		case k == "k8s.cluster.name":
			d.cluster = v
		case k == "k8s.namespace.name":
			d.ns = v
		case strings.HasPrefix(k, "k8s.") && strings.HasSuffix(k, ".name"):
			d.workload = v
		case k == "service.name":
			d.app = v
		case k == "service.version":
			d.version = v
		case k == "cloud.region":
			d.region = v
		case k == "cloud.availability_zone":
			d.zone = v
		}
	}
	return d
}

// show lists the connection in the dump, under the workload this side serves.
func (p *Proxy) show(lc *liveConn, r *record) {
	w := r.srcW
	if r.inbound {
		w = r.dstW
	}
	if w == nil || p.deps.Conns == nil {
		return
	}
	key := identity.Workload{UID: w.Uid, Name: w.Name, Namespace: w.Namespace, ServiceAccount: w.ServiceAccount}
	if pod := p.deps.Pod; pod != nil && pod.UID != "" {
		key = *pod
	}
	protocol := "TCP"
	if r.mtls {
		protocol = "HBONE"
	}
	lc.show(key, &conns.Conn{Inbound: r.inbound, Src: r.src.String(), OriginalDst: r.origDst,
		ActualDst: r.dst.String(), Protocol: protocol})
}

// logAttrs are the access-log fields, in Rust ztunnel's order. A peer known only by
// its baggage (across a gateway or a cluster) is named as Rust names it: its canonical
// service for the workload, and its namespace and cluster.
func (r *record) logAttrs() []any {
	a := []any{"src.addr", r.src.String()}
	srcName, srcNS, srcCluster := r.peerNames(r.srcW, r.inbound)
	if srcName != "" {
		a = append(a, "src.workload", srcName, "src.namespace", srcNS)
	}
	if r.mtls && !r.srcID.IsZero() {
		a = append(a, "src.identity", r.srcID.String())
	}
	if srcCluster != "" {
		a = append(a, "src.cluster", srcCluster)
	}
	a = append(a, "dst.addr", r.dst.String())
	if r.hboneAddr != "" {
		a = append(a, "dst.hbone_addr", r.hboneAddr)
	}
	if r.svc != nil {
		a = append(a, "dst.service", r.svc.Hostname)
	}
	dstName, dstNS, dstCluster := r.peerNames(r.dstW, !r.inbound)
	if dstName != "" {
		a = append(a, "dst.workload", dstName, "dst.namespace", dstNS)
	}
	if r.mtls && !r.dstID.IsZero() {
		a = append(a, "dst.identity", r.dstID.String())
	}
	if dstCluster != "" {
		a = append(a, "dst.cluster", dstCluster)
	}
	direction := "outbound"
	if r.inbound {
		direction = "inbound"
	}
	return append(a, "direction", direction)
}

// peerNames name one side: its workload, else (remote, the side the baggage is
// about) what its baggage says.
func (r *record) peerNames(w *state.Workload, remote bool) (name, ns, cluster string) {
	if w != nil {
		return w.Name, w.Namespace, w.ClusterId
	}
	if !remote || r.baggage == "" {
		return "", "", ""
	}
	d := fromBaggage(r.baggage)
	return d.app, d.ns, d.cluster
}

// complete writes the one access-log line of a finished connection. bytes_sent is
// client→server, bytes_recv server→client, whichever side reports.
func (p *Proxy) complete(r *record, sent, recv int64, err error) {
	a := append(r.logAttrs(), "bytes_sent", sent, "bytes_recv", recv,
		"duration", strconv.FormatInt(time.Since(r.start).Milliseconds(), 10)+"ms")
	if err != nil {
		p.access.Error("connection complete", append(a, "error", err.Error())...)
		return
	}
	p.access.Info("connection complete", a...)
}

// failed logs and counts a routed connection that never carried data.
func (p *Proxy) failed(r *record, flags string, err error) {
	p.deps.Traffic.Failed(r.labels(), flags)
	p.access.Warn("connection failed", append(r.logAttrs(), "error", err.Error())...)
}

// earlyDeny logs a connection refused before it was routed, as Rust log_early_deny:
// its addresses, direction and error, and no metric.
func (p *Proxy) earlyDeny(r *record, err error) {
	direction := "outbound"
	if r.inbound {
		direction = "inbound"
	}
	p.access.Warn("connection failed", "src.addr", r.src.String(), "dst.addr", r.dst.String(),
		"direction", direction, "error", err.Error())
}
