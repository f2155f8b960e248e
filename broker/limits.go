package broker

import (
	"golang.org/x/sys/unix"
)

// Limits that protect the broker from one client or one address: how many
// connections, how fast they come, how fast a client publishes, how long
// its topics are. Their defaults and reasons are in Config; the checks
// live where the packets are handled, the mechanisms in package limit.

// fdReserve is what an automatic MaxConnections leaves of the file limit
// for everything that is not a client: the store's files, the listeners,
// the admin API, log files.
const fdReserve = 256

// maxConnections resolves MaxConnections 0 to the process's file limit
// less fdReserve.
func (c *Config) maxConnections() int {
	if c.MaxConnections > 0 {
		return c.MaxConnections
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 1 << 20
	}
	return max(int(rl.Cur)-fdReserve, 1)
}
