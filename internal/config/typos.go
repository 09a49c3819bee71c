package config

import (
	"fmt"
	"sort"
	"strings"
)

// ownPrefixes start only ztunnel's variables: any other name with one is a typo.
var ownPrefixes = []string{"XDS_", "CA_", "POOL_", "HTTP2_", "KEEPALIVE_", "INPOD_", "ZTUNNEL_", "CRL_", "PROXY_"}

// typos lists environment variables that look like ztunnel's and are not: a name with
// one of ztunnel's own prefixes (XDS_ADRESS), or within two edits of a variable ztunnel
// reads (SECRET_TLL). Rust ignores them silently; here start-up warns, naming the
// variable and, when one is close, the one probably meant.
func (r *reader) typos() []string {
	names := make([]string, 0, len(r.env))
	for k := range r.env {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []string
	for _, k := range names {
		if declared(k) || serviceEnv(k) {
			continue
		}
		best, dist := closest(k)
		own := false
		for _, p := range ownPrefixes {
			own = own || strings.HasPrefix(k, p)
		}
		switch {
		case dist <= 2 && len(k) >= 6, own && dist <= max(3, len(k)/3):
			out = append(out, fmt.Sprintf("%s is not a variable ztunnel reads: did you mean %s?", k, best))
		case own:
			out = append(out, fmt.Sprintf("%s is not a variable ztunnel reads (the README lists those it does)", k))
		}
	}
	return out
}

// closest is the declared variable nearest to name, and how many edits away.
func closest(name string) (string, int) {
	best, dist := "", 1<<30
	for _, v := range variables {
		if _, family := familyPrefix(v.Name); family {
			continue
		}
		if d := editDistance(name, v.Name); d < dist {
			best, dist = v.Name, d
		}
	}
	return best, dist
}

// editDistance is Levenshtein's distance, over bytes (variable names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// serviceEnv: the kubelet gives every pod its namespace's services as variables
// (KUBERNETES_SERVICE_PORT, ISTIOD_PORT_15012_TCP_ADDR): never typos of ours.
func serviceEnv(name string) bool {
	return strings.Contains(name, "_SERVICE_") || strings.Contains(name, "_PORT_") || strings.HasSuffix(name, "_PORT")
}
