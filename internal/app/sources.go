package app

import (
	"encoding/json"
	"fmt"

	"github.com/ztunnel-go/ztunnel/examples"
	"github.com/ztunnel-go/ztunnel/internal/xds"
)

// loadStatic fills the state from the static config (a file, inline YAML, or the
// standalone example); xDS, when configured, adds to it.
func (a *App) loadStatic() (static any, err error) {
	local, err := a.staticConfig()
	if err != nil {
		return nil, err
	}
	if local != nil {
		if err := local.Apply(a.store); err != nil {
			return nil, fmt.Errorf("applying static config: %w", err)
		}
		w, s, p := local.Counts()
		a.log.Info("static config loaded", "workloads", w, "services", s, "policies", p)
		static = local
	}
	return static, nil
}

func (a *App) staticConfig() (*xds.LocalConfig, error) {
	switch {
	case a.cfg.Standalone:
		a.log.Warn("STANDALONE MODE: no XDS_ADDRESS, LOCAL_XDS_PATH, LOCAL_XDS or cluster token found; " +
			"serving the embedded example config (examples/standalone.yaml) in node mode with the built-in CA. " +
			"This is for trying ztunnel out, not for production.")
		return xds.ParseLocalConfig(examples.Standalone)
	case a.cfg.LocalXDSPath != "":
		return xds.ReadLocalConfig(a.cfg.LocalXDSPath)
	case a.cfg.LocalXDS != "":
		c, err := xds.ParseLocalConfig([]byte(a.cfg.LocalXDS))
		if err != nil {
			return nil, fmt.Errorf("LOCAL_XDS: %w", err)
		}
		return c, nil
	}
	return nil, nil
}

// jsonString renders v compactly for a log attribute.
func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}
