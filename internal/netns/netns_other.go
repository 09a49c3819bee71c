//go:build !linux

package netns

import (
	"errors"
	"os"
)

var errUnsupported = errors.New("network namespaces need Linux")

// FromFile needs Linux.
func FromFile(*os.File) (*NS, error) { return nil, errUnsupported }

// Do needs Linux.
func (n *NS) Do(func() error) error { return errUnsupported }
