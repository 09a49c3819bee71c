package xds

import (
	"encoding/json"
	"fmt"
	"sort"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// Type URLs ztunnel subscribes to.
const (
	AddressType       = "type.googleapis.com/istio.workload.Address"
	AuthorizationType = "type.googleapis.com/istio.security.Authorization"
)

// NodeInfo is who this ztunnel is, as the pod's env says (INSTANCE_IP, POD_NAME, ...).
type NodeInfo struct {
	InstanceIP, PodName, PodNamespace, NodeName string
	ProxyMetadata                               map[string]string // ISTIO_META_*, prefix stripped
	ProxyMetadataJSON                           map[string]string // ISTIO_METAJSON_*, unparsed
}

// Node is how ztunnel introduces itself to istiod, as Rust ztunnel does:
// id ztunnel~<ip>~<pod>.<ns>~<ns>.svc.cluster.local, and metadata NAME, NAMESPACE,
// INSTANCE_IPS, NODE_NAME, the ISTIO_META_* values, and the ISTIO_METAJSON_* ones parsed.
func Node(c NodeInfo) (*corepb.Node, error) {
	ip := c.InstanceIP
	if ip == "" {
		ip = "1.1.1.1"
	}
	id := fmt.Sprintf("ztunnel~%s~%s.%s~%s.svc.cluster.local", ip, c.PodName, c.PodNamespace, c.PodNamespace)
	fields := map[string]*structpb.Value{
		"NAME":         structpb.NewStringValue(c.PodName),
		"NAMESPACE":    structpb.NewStringValue(c.PodNamespace),
		"INSTANCE_IPS": structpb.NewStringValue(c.InstanceIP),
		"NODE_NAME":    structpb.NewStringValue(c.NodeName),
	}
	for _, k := range sortedKeys(c.ProxyMetadata) {
		fields[k] = structpb.NewStringValue(c.ProxyMetadata[k])
	}
	for _, k := range sortedKeys(c.ProxyMetadataJSON) {
		var v any
		if err := json.Unmarshal([]byte(c.ProxyMetadataJSON[k]), &v); err != nil {
			return nil, fmt.Errorf("ISTIO_METAJSON_%s: %w", k, err)
		}
		val, err := structpb.NewValue(v)
		if err != nil {
			return nil, fmt.Errorf("ISTIO_METAJSON_%s: %w", k, err)
		}
		fields[k] = val
	}
	return &corepb.Node{Id: id, Metadata: &structpb.Struct{Fields: fields}}, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
