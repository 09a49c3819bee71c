package readiness_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/goleak"

	"github.com/ztunnel-go/ztunnel/internal/readiness"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func probe(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestReadinessTransitions(t *testing.T) {
	ztest.NoLeaks(t)
	tr := readiness.New()
	state := tr.Register("state manager")
	proxy := tr.Register("proxy")
	steps := []struct {
		do       func()
		code     int
		wantBody string
	}{
		{func() {}, 500, "not ready, pending: proxy, state manager\n"},
		{state.Done, 500, "not ready, pending: proxy\n"},
		{state.Done, 500, "not ready, pending: proxy\n"}, // Done twice clears once
		{proxy.Done, 200, "ready\n"},
		{func() { tr.Register("shutdown") }, 500, "not ready, pending: shutdown\n"},
	}
	for i, s := range steps {
		s.do()
		if code, body := probe(t, tr, "GET", "/healthz/ready"); code != s.code || body != s.wantBody {
			t.Errorf("step %d: %d %q, want %d %q", i, code, body, s.code, s.wantBody)
		}
	}
}

func TestSameNameRegisteredTwice(t *testing.T) {
	ztest.NoLeaks(t)
	tr := readiness.New()
	a, b := tr.Register("proxy"), tr.Register("proxy")
	a.Done()
	if code, _ := probe(t, tr, "GET", "/healthz/ready"); code != 500 {
		t.Error("ready while one of two registrations is pending")
	}
	b.Done()
	if code, _ := probe(t, tr, "GET", "/healthz/ready"); code != 200 {
		t.Error("not ready after both done")
	}
}

func TestReadinessMethodsAndPaths(t *testing.T) {
	ztest.NoLeaks(t)
	tr := readiness.New()
	if code, _ := probe(t, tr, "POST", "/healthz/ready"); code != 405 {
		t.Errorf("POST = %d, want 405", code)
	}
	if code, _ := probe(t, tr, "GET", "/other"); code != 404 {
		t.Errorf("other path = %d, want 404", code)
	}
}
