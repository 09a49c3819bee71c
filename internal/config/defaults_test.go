package config

import (
	"reflect"
	"strings"
	"testing"
)

// The variables table is where a default is written down for users (the README is
// checked against it); the loader has its own literal. Setting each variable to the
// table's default must change nothing in the loaded config, so that the two cannot
// drift apart. The table's defaults are those of a ztunnel in a cluster (as Istio's
// chart runs it); outside one, and for defaults written as prose ("same as
// XDS_ADDRESS", "1337 (shared); none (dedicated)"), they depend on other settings. An
// ISTIO_META_* variable is also node metadata, so its own metadata entry is set aside.
func TestTableDefaultsAreTheLoaders(t *testing.T) {
	src := func(env ...string) Source {
		return Source{Env: env, NumCPU: 2, IPv6: func() bool { return true }, FileExists: func(string) bool { return true }}
	}
	base, err := Load(src())
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, v := range variables {
		if strings.HasSuffix(v.Name, "*") || !literalDefault(v.Default) {
			continue
		}
		got, err := Load(src(v.Name + "=" + v.Default))
		if err != nil {
			t.Errorf("%s=%s, the table's default, is refused: %v", v.Name, v.Default, err)
			continue
		}
		if key, ok := strings.CutPrefix(v.Name, "ISTIO_META_"); ok {
			delete(got.ProxyMetadata, key)
		}
		if !reflect.DeepEqual(got, base) {
			t.Errorf("%s=%s, the table's default, is not the loader's default", v.Name, v.Default)
		}
		checked++
	}
	t.Logf("%d defaults checked", checked)
	if checked < 30 {
		t.Errorf("only %d defaults checked; the table's literal defaults went missing", checked)
	}
}

// literalDefault reports a default that is a value to set, not "–" (unset) or a
// description.
func literalDefault(d string) bool {
	if d == "–" || strings.ContainsAny(d, " ()") || declared(d) {
		return false
	}
	return true
}
