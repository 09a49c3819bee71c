package proxy

import (
	"reflect"
	"testing"

	"github.com/ztunnel-go/ztunnel/internal/config"
	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/pool"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// The loader's defaults (checked against the variables table, and that against the
// README, in internal/config) are the components' own: a config with nothing set maps
// to exactly the HBONE settings and pool options that a zero value gets. So the three
// agree, and a component's zero value only repeats the table for callers without a
// config (tests, embedders).
func TestConfigDefaultsAreTheComponents(t *testing.T) {
	ztest.NoLeaks(t)
	c, err := config.Load(config.Source{NumCPU: 2, IPv6: func() bool { return true }, FileExists: func(string) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	got, want := hboneSettings(c), hbone.Settings{}.WithDefaults()
	v := reflect.ValueOf(got)
	for i := range v.NumField() {
		if f := v.Type().Field(i); f.Type.Kind() == reflect.Uint32 && v.Field(i).IsZero() {
			t.Errorf("hbone.Settings.%s is not mapped from the config", f.Name)
		}
	}
	got.PingInterval, got.PingTimeout = want.PingInterval, want.PingTimeout // Rust's fixed values, not settings
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the config's HBONE defaults\n %+v\ndiffer from hbone's\n %+v", got, want)
	}
	if got, want := poolOptions(c, nil), (pool.Options{}).WithDefaults(); got.MaxStreams != want.MaxStreams || got.IdleTimeout != want.IdleTimeout {
		t.Errorf("the config's pool defaults %+v differ from the pool's %+v", got, want)
	}
}
