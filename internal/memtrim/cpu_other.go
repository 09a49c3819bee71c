//go:build !unix

package memtrim

import "time"

// processCPU is unknown here: only allocation judges quiet.
func processCPU() time.Duration { return 0 }
