//go:build !linux

package client

import "syscall"

// bindNoPort is Linux's IP_BIND_ADDRESS_NO_PORT; elsewhere bind picks the
// port as usual.
func bindNoPort(_, _ string, _ syscall.RawConn) error { return nil }
