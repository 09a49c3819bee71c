package proxy

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ztunnel-go/ztunnel/internal/crl"
	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// TestOutboundFlag pins Rust ConnectionResult::extract_failure_reason: each way an
// outbound connection fails once routed has its response flag.
func TestOutboundFlag(t *testing.T) {
	ztest.NoLeaks(t)
	wrap := func(e error) error { return fmt.Errorf("reaching 10.0.0.2:15008: %w", e) }
	for _, tt := range []struct {
		err  error
		want string
	}{
		{&hbone.StatusError{Code: 401}, "DENY"},
		{wrap(crl.ErrRevoked), "CERT_REVOKED"},
		{wrap(fmt.Errorf("%w with x: bad certificate", errTLSHandshake)), "TLS_FAILURE"},
		{wrap(fmt.Errorf("%w with x: no preface", errH2Handshake)), "H2_HANDSHAKE_FAILURE"},
		{wrap(fmt.Errorf("%w: certificate for y: CA down", errIdentity)), "IDENTITY_ERROR"},
		{wrap(fmt.Errorf("%w: x: %w", errNetworkPolicy, context.DeadlineExceeded)), "NETWORK_POLICY"},
		{&hbone.StatusError{Code: 503}, "CONNECT"},
		{errors.New("connection refused"), "CONNECT"},
	} {
		if got := outboundFlag(tt.err); got != tt.want {
			t.Errorf("outboundFlag(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}
