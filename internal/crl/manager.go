package crl

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/metrics"
)

// Options configure a Manager; app fills them from CRL_PATH.
type Options struct {
	Path string
	// Anchors returns the CAs a CRL may be signed by (Parse); nil: checked at use only.
	Anchors func() []*x509.Certificate
	Metrics *metrics.CRL // nil-safe
	Logger  *slog.Logger
	// Interval is how often Run looks at the file; 0: one second. A stat per look: a
	// ConfigMap update swaps the `..data` symlink, which a stat of the path follows, so
	// no inotify watch of the directory is needed (Rust watches it with a 2 s debounce).
	Interval time.Duration
}

// Manager holds the current CRLs and the connections they judge. Methods of a nil
// *Manager do nothing (no CRL_PATH), so callers need no checks. Safe for concurrent use.
type Manager struct {
	opts Options
	log  *slog.Logger
	set  atomic.Pointer[Set] // nil until a file was loaded: nothing is revoked
	gen  atomic.Uint64       // bumped on every new set, so Track sees reloads it raced

	mu      sync.Mutex            // guards tracked
	tracked map[*tracked]struct{} // open connections, re-judged on every new set

	// Run's (and Load's, before Run): what the last look saw.
	seen       fs.FileInfo
	sum        [sha256.Size]byte // of the file in force
	failed     [sha256.Size]byte // of the last file refused
	missing    bool
	retry      bool   // the file is not fully in force: look again even if unchanged
	unverified bool   // the set in force has CRLs of issuers not known when it was loaded
	lastErr    string // the last failure logged, so a retry that fails alike stays quiet
}

// New builds a Manager for o.Path; nothing is read until Load or Run.
func New(o Options) *Manager {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Logger == nil {
		o.Logger = logging.Discard()
	}
	return &Manager{opts: o, log: o.Logger, tracked: map[*tracked]struct{}{}}
}

// Load reads the file now; call it before Run, or from Run only. A file that does not
// exist yet is not an error (the chart's ConfigMap volume is optional, and appears
// later); one that cannot be read or parsed keeps the set in force, and the error names
// CRL_PATH.
func (m *Manager) Load() error {
	if m == nil {
		return nil
	}
	fi, err := os.Stat(m.opts.Path)
	if err != nil {
		return m.unreadable(err)
	}
	m.missing, m.seen = false, fi // an unreadable file is tried again once it changes
	data, err := os.ReadFile(m.opts.Path)
	if err != nil {
		return m.unreadable(err)
	}
	sum := sha256.Sum256(data)
	same := m.set.Load() != nil && bytes.Equal(sum[:], m.sum[:])
	if same && !m.retry {
		return nil
	}
	var anchors []*x509.Certificate
	if m.opts.Anchors != nil {
		anchors = m.opts.Anchors()
	}
	s, err := m.parse(data, anchors, same)
	if err != nil {
		if sum != m.failed { // a retry of the same file counts once
			m.failed = sum
			m.opts.Metrics.ReloadFailed()
		}
		return fmt.Errorf("CRL_PATH %s: %w; the CRLs loaded before stay in force", m.opts.Path, err)
	}
	if s == nil {
		return nil
	}
	m.sum = sum
	m.set.Store(s)
	m.gen.Add(1)
	m.log.Info("CRL loaded", "path", m.opts.Path, "crls", s.Lists(), "revoked", s.Revoked())
	m.rejudge(s)
	return nil
}

// parse parses as Parse does, but takes a CRL of an issuer ztunnel does not know yet only while no CRL is in
// force: at start-up, before the first certificate brings the CA's intermediates, that
// is the mesh CA's own; checked at use against the peer's verified issuer, a foreign one
// revokes nothing. Once CRLs are in force, such a file is refused, the ones in force
// stay, and it is tried again every look, so it is taken once a certificate through
// that CA arrives.
// A nil Set with no error: same is the file in force, and nothing changed.
func (m *Manager) parse(data []byte, anchors []*x509.Certificate, same bool) (*Set, error) {
	s, err := Parse(data, anchors)
	m.retry = errors.Is(err, ErrUnknownIssuer) // may pass once a certificate brings its CA
	switch {
	case errors.Is(err, ErrUnknownIssuer) && (m.set.Load() == nil || m.unverified):
		if same {
			return nil, nil
		}
		m.unverified = true
		m.log.Warn("CRL issuer not known yet: its signature is checked against each peer's chain until then",
			"path", m.opts.Path, "error", err)
		return Parse(data, nil)
	case err != nil:
		return nil, err
	}
	m.unverified = false
	return s, nil
}

func (m *Manager) unreadable(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		if !m.missing {
			m.missing = true
			m.log.Warn("CRL_PATH does not exist (yet): it is loaded when it appears", "path", m.opts.Path,
				"in_force", m.set.Load() != nil)
		}
		return nil
	}
	m.opts.Metrics.ReloadFailed()
	return fmt.Errorf("CRL_PATH %s: %w; the CRLs loaded before stay in force", m.opts.Path, err)
}

// Run looks at the file every Interval until ctx ends and loads it when it changed.
func (m *Manager) Run(ctx context.Context) {
	if m == nil {
		return
	}
	t := time.NewTicker(m.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !m.retry && !m.changed() {
			continue
		}
		err := m.Load()
		if err == nil {
			m.lastErr = ""
		} else if err.Error() != m.lastErr {
			m.lastErr = err.Error()
			m.log.Warn("CRL reload failed", "error", err)
		}
	}
}

// changed reports whether the path now names another file, or the file was written.
func (m *Manager) changed() bool {
	fi, err := os.Stat(m.opts.Path)
	if err != nil {
		return !m.missing // gone: Load logs it once
	}
	prev := m.seen
	return prev == nil || !os.SameFile(prev, fi) || !fi.ModTime().Equal(prev.ModTime()) || fi.Size() != prev.Size()
}

// Check judges a peer's verified chains against the CRLs in force.
func (m *Manager) Check(chains [][]*x509.Certificate) error {
	if m == nil {
		return nil
	}
	return m.set.Load().CheckChains(chains)
}

// Generation changes whenever a new set comes into force; take it before a handshake
// and give it to Track, which then re-judges a peer that a reload raced.
func (m *Manager) Generation() uint64 {
	if m == nil {
		return 0
	}
	return m.gen.Load()
}

// Rejected counts a handshake refused for a revoked peer (reporter: source when ztunnel
// dialed, destination when it accepted).
func (m *Manager) Rejected(reporter string) {
	if m != nil {
		m.opts.Metrics.Rejected(reporter)
	}
}
