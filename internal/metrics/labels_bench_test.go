package metrics

import "testing"

// BenchmarkConnLabelValues is the label work of one connection event (open, close or
// failure): it runs per connection, never per byte.
func BenchmarkConnLabelValues(b *testing.B) {
	l := &ConnLabels{Reporter: "destination", SrcWorkload: "sleep", SrcNS: "foo", DstWorkload: "echo", DstNS: "default", MutualTLS: true}
	b.ReportAllocs()
	for b.Loop() {
		l.values("-")
	}
}
