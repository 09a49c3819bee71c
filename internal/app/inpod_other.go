//go:build !linux

package app

import (
	"context"
	"sync"

	"github.com/ztunnel-go/ztunnel/internal/certmgr"
)

// runInPod needs Linux: network namespaces and SCM_RIGHTS.
func (a *App) runInPod(context.Context, *sync.WaitGroup, *certmgr.Manager, <-chan struct{}, func(context.Context, string) error) {
	a.log.Error("in-pod mode needs Linux; set INPOD_ENABLED=false for node mode")
	a.ready.Register("workload proxy manager")
}
