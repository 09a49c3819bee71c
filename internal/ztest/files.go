package ztest

import (
	"os"
	"testing"
)

// ReplaceFile puts data at path as a ConfigMap or cert-manager update does: written
// beside it, then renamed over it, so a reader sees the old file or the new one, never
// half of one.
func ReplaceFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}
