//go:build !linux

// Package inpod needs Linux (network namespaces, SCM_RIGHTS); elsewhere it is empty.
package inpod
