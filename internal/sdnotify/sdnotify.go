package sdnotify

import (
	"fmt"
	"net"
	"strconv"

	"golang.org/x/sys/unix"
)

// The states a Notifier sends; see sd_notify(3).
const (
	// Ready says start-up is finished: listeners bound, state loaded.
	Ready = "READY=1"
	// Stopping says shutdown has begun.
	Stopping = "STOPPING=1"
	// reloading says a configuration reload has begun; Reloading adds the
	// MONOTONIC_USEC systemd wants with it.
	reloading = "RELOADING=1"
)

// Notifier sends state to the service manager's notification socket.
type Notifier struct {
	addr *net.UnixAddr // nil: nobody listens, send nothing
}

// New returns a Notifier for the socket named by socket, the value of
// $NOTIFY_SOCKET: a path, or a name in the abstract namespace starting
// with '@'. An empty socket gives the zero Notifier, which sends nothing.
func New(socket string) Notifier {
	if socket == "" {
		return Notifier{}
	}
	// net.UnixAddr spells the abstract namespace with '@' too: the dialer
	// turns it into the leading NUL byte the kernel expects.
	return Notifier{addr: &net.UnixAddr{Name: socket, Net: "unixgram"}}
}

// Enabled reports whether n sends anything.
func (n Notifier) Enabled() bool { return n.addr != nil }

// Notify sends state, one or more VAR=value lines separated by '\n', as
// one datagram. The zero Notifier returns nil at once. Safe for concurrent
// use.
func (n Notifier) Notify(state string) error {
	if n.addr == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}

// Status returns a STATUS= line: free text the manager shows beside the
// unit (systemctl status). Append it to another state with '\n'.
func Status(text string) string { return "STATUS=" + text }

// Reloading returns the state to send when a configuration reload begins:
// RELOADING=1 with the monotonic clock's time in microseconds, which
// systemd 253 and later want with it. Send Ready when the reload is done,
// whether it applied or was refused.
func Reloading() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return reloading
	}
	usec := ts.Sec*1_000_000 + ts.Nsec/1_000
	return reloading + "\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10)
}
