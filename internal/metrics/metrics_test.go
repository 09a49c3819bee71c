package metrics_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/ztunnel-go/ztunnel/internal/metrics"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func scrape(t *testing.T, path, accept string) (string, string) {
	t.Helper()
	h := metrics.Handler(metrics.NewRegistry("1.28.0"))
	req := httptest.NewRequest("GET", path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Result().Header.Get("Content-Type"), string(b)
}

func TestBothPathsServeTheSameSeries(t *testing.T) {
	ztest.NoLeaks(t)
	for _, path := range []string{"/metrics", "/stats/prometheus"} {
		ct, body := scrape(t, path, "")
		if !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("%s content type %q", path, ct)
		}
		for _, want := range []string{`istio_build{component="ztunnel",tag="1.28.0"} 1`, "go_goroutines", "process_open_fds"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %s", path, want)
			}
		}
		for _, banned := range []string{`pod="`, `namespace="`, `app="`, `job="`, `instance="`} {
			if strings.Contains(body, banned) {
				t.Errorf("%s sets label %s, which would override Prometheus's (honor_labels)", path, banned)
			}
		}
	}
}

func TestOpenMetricsWhenAsked(t *testing.T) {
	ztest.NoLeaks(t)
	ct, body := scrape(t, "/metrics", "application/openmetrics-text;version=1.0.0")
	if !strings.HasPrefix(ct, "application/openmetrics-text") || !strings.HasSuffix(strings.TrimSpace(body), "# EOF") {
		t.Errorf("content type %q, body ends %q", ct, body[max(0, len(body)-20):])
	}
}

// HBONE floods and protocol errors are a counter by scope and code (catalogue BI-1,
// BI-6, LD-4: every detected case is counted).
func TestHBONEErrorsCounted(t *testing.T) {
	ztest.NoLeaks(t)
	reg := metrics.NewRegistry("1.28.0")
	tr := metrics.NewTraffic(reg)
	tr.HBONEError("connection", "ENHANCE_YOUR_CALM")
	tr.HBONEError("connection", "ENHANCE_YOUR_CALM")
	tr.HBONEError("stream", "REFUSED_STREAM")
	var nilTraffic *metrics.Traffic
	nilTraffic.HBONEError("stream", "PROTOCOL_ERROR") // records nothing, does not panic
	rec := httptest.NewRecorder()
	metrics.Handler(reg).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{`ztunnel_hbone_errors_total{code="ENHANCE_YOUR_CALM",scope="connection"} 2`,
		`ztunnel_hbone_errors_total{code="REFUSED_STREAM",scope="stream"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}
