package client

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// bindNoPort sets IP_BIND_ADDRESS_NO_PORT on a socket about to be bound to
// a source address, so the kernel picks the port at connect time, unique
// per (source, destination) pair, instead of at bind time, unique per
// source address, and may reuse a port in TIME_WAIT. Measured here with
// 19,000 connections from two source addresses at -R 2000: without it a
// run started while the previous run's 36,000 sockets were in TIME_WAIT
// spent two CPUs searching for free ports and connected 650 a second;
// with it back-to-back runs connect 2,000 a second on 4 CPU-seconds.
func bindNoPort(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
