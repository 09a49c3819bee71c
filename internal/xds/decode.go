package xds

import (
	"fmt"

	discoverypb "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"istio.io/istio/pkg/workloadapi"
	"istio.io/istio/pkg/workloadapi/security"

	"github.com/ztunnel-go/ztunnel/internal/state"
)

// rejection is one resource refused, named as istiod named it.
type rejection struct{ name, reason string }

func (r rejection) String() string { return r.name + ": " + r.reason }

// decode turns a response of type i into a state batch; resources that are not of the
// type, or do not parse, are rejected and left out.
func decode(i int, resp *discoverypb.DeltaDiscoveryResponse) (state.Update, []rejection) {
	var u state.Update
	var bad []rejection
	for _, r := range resp.Resources {
		if r.Resource == nil || r.Resource.TypeUrl != types[i] {
			bad = append(bad, rejection{r.Name, fmt.Sprintf("resource is %q, want %s", r.Resource.GetTypeUrl(), types[i])})
			continue
		}
		var err error
		if i == 0 {
			a := &workloadapi.Address{}
			if err = r.Resource.UnmarshalTo(a); err == nil {
				u.Addresses = append(u.Addresses, a)
			}
		} else {
			p := &security.Authorization{}
			if err = r.Resource.UnmarshalTo(p); err == nil {
				u.Policies = append(u.Policies, p)
			}
		}
		if err != nil {
			bad = append(bad, rejection{r.Name, "decoding: " + err.Error()})
		}
	}
	if i == 0 {
		u.RemovedAddresses = resp.RemovedResources
	} else {
		u.RemovedPolicies = resp.RemovedResources
	}
	return u, bad
}
