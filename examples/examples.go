// Package examples ships example configurations, embedded so the binary can serve them.
package examples

import _ "embed"

// Standalone is the static config of standalone mode (README command 1).
//
//go:embed standalone.yaml
var Standalone []byte
