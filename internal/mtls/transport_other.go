//go:build !linux

package mtls

const chunkedReads = false

func (t *Transport) readSocket() error { panic("mtls: chunked reads are Linux only") }
