//go:build linux

package bench

import (
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestReportAndChart renders made-up medians: every metric gets a row in the table, a
// goal verdict where it has one, and a bar in a PNG that decodes.
func TestReportAndChart(t *testing.T) {
	med := map[string]map[string]float64{"direct": {}, "mtls-pipe": {}, "stunnel": {}, "ztunnel": {}}
	for i, k := range metricOrder {
		med["direct"][k], med["mtls-pipe"][k] = float64(20+i), float64(10+i)
		med["stunnel"][k], med["ztunnel"][k] = float64(8+i), float64(12+i)
	}
	md := report([]string{"direct", "mtls-pipe", "stunnel", "ztunnel"}, med, 5, 3)
	for _, k := range metricOrder {
		if !strings.Contains(md, "| "+k+" |") {
			t.Errorf("report lacks the row %q", k)
		}
	}
	i := float64(slices.Index(metricOrder, cps8))
	want := fmt.Sprintf("new connections/s at c=8 ≥ 3× mtls-pipe | %.2f× | **no** |", (12+i)/(10+i))
	if !strings.Contains(md, want) {
		t.Errorf("goal verdict missing or wrong:\n%s", md)
	}
	path := filepath.Join(t.TempDir(), "chart.png")
	if err := chart(path, med); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil || img.Bounds().Dy() < 40*len(metricOrder) {
		t.Fatalf("chart: %v, bounds %v", err, img)
	}
}
