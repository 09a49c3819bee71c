package conns

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDumpShowsPodsAndTheirLiveConnections(t *testing.T) {
	ztest.NoLeaks(t)
	sleep := identity.Workload{UID: "uid-sleep", Name: "sleep", Namespace: "foo", ServiceAccount: "sleep"}
	idle := identity.Workload{UID: "uid-idle", Name: "idle", Namespace: "foo"}
	r := New()
	r.SetPod(sleep, true)
	r.SetPod(idle, false)
	doneOut := r.Add(sleep, &Conn{Src: "10.0.0.1:40002", ActualDst: "10.0.0.2:15008", Protocol: "HBONE"})
	r.Add(sleep, &Conn{Src: "10.0.0.1:40001", ActualDst: "10.0.0.3:15008", Protocol: "HBONE"})
	r.Add(sleep, &Conn{Inbound: true, Src: "10.0.0.9:1234", ActualDst: "10.0.0.1:8080", Protocol: "TCP"})

	d := r.Dump()
	if got := d["uid-sleep"]; got.State != "Up" || len(got.Outbound) != 2 || len(got.Inbound) != 1 ||
		got.Outbound[0].Src != "10.0.0.1:40001" {
		t.Errorf("sleep = %+v, want Up with two outbound sorted by source and one inbound", got)
	}
	if got := d["uid-idle"]; got == nil || got.State != "Pending" || len(got.Outbound)+len(got.Inbound) != 0 {
		t.Errorf("idle pod = %+v, want listed as Pending with no connections", got)
	}

	doneOut()
	r.RemovePod("uid-idle")
	d = r.Dump()
	if len(d["uid-sleep"].Outbound) != 1 || d["uid-idle"] != nil {
		t.Errorf("after close and removal: %+v", d)
	}
}

func TestNilRegistryRecordsNothing(t *testing.T) {
	ztest.NoLeaks(t)
	var r *Registry
	r.Add(identity.Workload{UID: "k"}, &Conn{})()
	r.SetPod(identity.Workload{UID: "k"}, true)
	r.RemovePod("k")
	if d := r.Dump(); len(d) != 0 {
		t.Errorf("nil registry dump = %v", d)
	}
}
