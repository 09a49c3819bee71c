package app

import (
	"encoding/json"
	"fmt"

	"github.com/ztunnel-go/ztunnel/examples"
	"github.com/ztunnel-go/ztunnel/internal/readiness"
	"github.com/ztunnel-go/ztunnel/internal/xds"
)

// loadSources fills the state from the static config (a file, inline YAML, or the
// standalone example). The "state manager" readiness task clears once state is complete:
// at once without xDS; with xDS, when its first responses are applied.
func (a *App) loadSources(task *readiness.Task) (static any, complete bool, err error) {
	local, err := a.staticConfig()
	if err != nil {
		return nil, false, err
	}
	if local != nil {
		if err := local.Apply(a.store); err != nil {
			return nil, false, fmt.Errorf("applying static config: %w", err)
		}
		w, s, p := local.Counts()
		a.log.Info("static config loaded", "workloads", w, "services", s, "policies", p)
		static = local
	}
	if a.cfg.XDSAddress != "" {
		a.log.Warn("this build has no xDS client yet; readiness stays pending on the state manager", "xds_address", a.cfg.XDSAddress)
		return static, false, nil
	}
	task.Done()
	return static, true, nil
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
