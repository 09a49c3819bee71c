package xds

import (
	"fmt"

	discoverypb "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"istio.io/istio/pkg/workloadapi"
	"istio.io/istio/pkg/workloadapi/security"

	"github.com/ztunnel-go/ztunnel/internal/state"
)

// rejection is one resource refused, named as istiod named it.
type rejection struct{ name, reason string }

func (r rejection) String() string { return r.name + ": " + r.reason }

// resourceType is one xDS type ztunnel subscribes to. Adding a type is one row of
// resourceTypes: its URL, how one resource goes into a state batch, where its removals
// go, and whether XDS_ON_DEMAND subscribes it by name instead of by wildcard.
type resourceType struct {
	url      string
	onDemand bool
	decode   func(r *anypb.Any, u *state.Update) error
	remove   func(u *state.Update, names []string)
}

// resourceTypes are subscribed in this order on every stream.
var resourceTypes = [...]resourceType{
	{url: AddressType, onDemand: true,
		decode: func(r *anypb.Any, u *state.Update) error {
			a := &workloadapi.Address{}
			if err := r.UnmarshalTo(a); err != nil {
				return err
			}
			u.Addresses = append(u.Addresses, a)
			return nil
		},
		remove: func(u *state.Update, names []string) { u.RemovedAddresses = names }},
	{url: AuthorizationType,
		decode: func(r *anypb.Any, u *state.Update) error {
			p := &security.Authorization{}
			if err := r.UnmarshalTo(p); err != nil {
				return err
			}
			u.Policies = append(u.Policies, p)
			return nil
		},
		remove: func(u *state.Update, names []string) { u.RemovedPolicies = names }},
}

// typeIndex is the row of a type URL in resourceTypes, or -1.
func typeIndex(url string) int {
	for i, t := range resourceTypes {
		if t.url == url {
			return i
		}
	}
	return -1
}

// decode turns a response of type i into a state batch; resources that are not of the
// type, or do not parse, are rejected and left out.
func decode(i int, resp *discoverypb.DeltaDiscoveryResponse) (state.Update, []rejection) {
	t := resourceTypes[i]
	var u state.Update
	var bad []rejection
	for _, r := range resp.Resources {
		if r.Resource == nil || r.Resource.TypeUrl != t.url {
			bad = append(bad, rejection{r.Name, fmt.Sprintf("resource is %q, want %s", r.Resource.GetTypeUrl(), t.url)})
			continue
		}
		if err := t.decode(r.Resource, &u); err != nil {
			bad = append(bad, rejection{r.Name, "decoding: " + err.Error()})
		}
	}
	t.remove(&u, resp.RemovedResources)
	return u, bad
}
