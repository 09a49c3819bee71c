package proxy

import (
	"log/slog"

	"github.com/ztunnel-go/ztunnel/internal/config"
	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/pool"
)

// hboneSettings maps the config to HBONE's HTTP/2 settings. A default the config did
// not change must be the one hbone takes for a zero value (defaults_test.go checks).
func hboneSettings(c *config.Config) hbone.Settings {
	return hbone.Settings{StreamWindow: c.WindowSize, ConnWindow: c.ConnectionWindowSize,
		MaxFrameSize: c.FrameSize, MaxStreams: c.Limits.MaxStreams, MaxHeaderListSize: c.Limits.MaxHeaderListSize,
		MaxQueuedControl: c.Limits.MaxQueuedControl, MaxEmptyData: c.Limits.MaxEmptyData, ResetsPerSecond: c.Limits.ResetsPerSecond,
	}
}

// poolOptions maps the config to the HBONE connection pool's options, as hboneSettings.
func poolOptions(c *config.Config, log *slog.Logger) pool.Options {
	return pool.Options{MaxStreams: int(c.PoolMaxStreamsPerConn), IdleTimeout: c.PoolUnusedReleaseTimeout, Logger: log}
}
