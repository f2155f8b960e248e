package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"github.com/shoalmq/shoal/config"
)

// Running as root, as Mosquitto does: a broker started as root with a
// user setting binds its listeners, switches to that user and its groups,
// and only then opens the store, so the files in data_dir belong to the
// user it serves as and nothing it does from then on is done as root.
// One started as root without it refuses a listener off loopback unless
// allow_root says so.
//
// The order, in run: the checks here, before anything is bound (a refusal
// binds nothing); broker.Bind and the admin listener's Listen, as root, so
// tls_listen, ws_listen, wss_listen and admin_listen may use ports below
// 1024; the switch; broker.Start, which opens the store and the MQTT TCP
// listener (listen). That listener is the exception: gnet binds its own
// socket when the loops start, after the store has loaded (Bind only
// reserves the port), so as another user its port must be one that user
// may bind. checkPrivileges refuses a listen port below that floor up
// front rather than fail after the switch. A port below 1024 for MQTT
// over TCP is run as the user with CAP_NET_BIND_SERVICE instead (the
// packaged systemd unit does).

// account is the user to switch to.
type account struct {
	name     string
	uid, gid int
	groups   []int // supplementary groups, the primary one included
}

// privileges is what checkPrivileges decided.
type privileges struct {
	// switchTo is the user to become after binding; nil: stay.
	switchTo *account
	// note is a line for the log when user is set but has no effect.
	note string
}

// lookupUser resolves name to an account. With cgo off (the packaged
// binary) os/user reads /etc/passwd and /etc/group only, where useradd
// puts a system user.
func lookupUser(name string) (*account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	a := &account{name: name}
	if a.uid, err = strconv.Atoi(u.Uid); err != nil {
		return nil, fmt.Errorf("uid %q: %w", u.Uid, err)
	}
	if a.gid, err = strconv.Atoi(u.Gid); err != nil {
		return nil, fmt.Errorf("gid %q: %w", u.Gid, err)
	}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("groups of %s: %w", name, err)
	}
	for _, id := range ids {
		g, err := strconv.Atoi(id)
		if err != nil {
			return nil, fmt.Errorf("group id %q: %w", id, err)
		}
		a.groups = append(a.groups, g)
	}
	return a, nil
}

// checkPrivileges decides, before anything is bound, whether the broker
// switches user, and refuses what it must not run: root serving a
// listener off loopback without user or allow_root, a user that does not
// exist, or a listen port the user cannot bind. euid is the process's
// effective user id; lookup is lookupUser (tests pass their own); floor is
// the lowest port an unprivileged user may bind. Errors name the key.
func checkPrivileges(f config.File, euid int, lookup func(string) (*account, error), floor int) (privileges, error) {
	var p privileges
	if euid != 0 {
		if f.User != "" {
			if cur, err := user.LookupId(strconv.Itoa(euid)); err != nil || cur.Username != f.User {
				p.note = "user: not started as root: running as uid " + strconv.Itoa(euid)
			}
		}
		return p, nil
	}
	if f.User != "" {
		a, err := lookup(f.User)
		if err != nil {
			return p, fmt.Errorf("user: %w", err)
		}
		if a.uid != 0 {
			if port := portOf(f.Broker.Listen); port > 0 && port < floor {
				return p, fmt.Errorf("listen: port %d is below %d, which user %s may not bind; the MQTT TCP listener opens after the switch from root (README, \"Install\"): use a port from %d up, or start the broker as %s with CAP_NET_BIND_SERVICE",
					port, floor, f.User, floor, f.User)
			}
			p.switchTo = a
			return p, nil
		}
	}
	if f.AllowRoot {
		return p, nil
	}
	for _, l := range listeners(f) {
		if !isLoopback(l.addr) {
			return p, fmt.Errorf("user: running as root with %s on %s, off loopback: set user to the account to run as (the broker switches to it once its listeners are bound), or allow_root: true", l.key, l.addr)
		}
	}
	return p, nil
}

// listener is a configured listen address and its key.
type listener struct{ key, addr string }

// listeners lists the addresses f listens on.
func listeners(f config.File) []listener {
	all := []listener{
		{"listen", f.Broker.Listen},
		{"tls_listen", f.Broker.Transports.TLSListen},
		{"ws_listen", f.Broker.Transports.WSListen},
		{"wss_listen", f.Broker.Transports.WSSListen},
		{"admin_listen", f.AdminListen},
	}
	var on []listener
	for _, l := range all {
		if l.addr != "" {
			on = append(on, l)
		}
	}
	return on
}

// isLoopback reports whether addr ("host:port") listens on loopback only:
// a loopback IP or "localhost". An empty host is every interface; any
// other name counts as off loopback, as it is not resolved here.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// portOf returns addr's port, or 0.
func portOf(addr string) int {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(port)
	return n
}

// unprivilegedPortStart is the lowest port a process without
// CAP_NET_BIND_SERVICE may bind: the kernel's
// net.ipv4.ip_unprivileged_port_start (1024 unless changed; container
// runtimes often set 0).
func unprivilegedPortStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return 1024
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 1024
	}
	return n
}

// switchUser makes the process a: supplementary groups, group, then user
// (after setuid there is no right left to change the others). Go applies
// each to every thread of the process (Linux, Go 1.16 and later). Root's
// real, effective and saved ids all go, so root cannot be taken back;
// switchUser checks that it cannot.
func switchUser(a *account) error {
	if err := syscall.Setgroups(a.groups); err != nil {
		return fmt.Errorf("user: setgroups for %s: %w", a.name, err)
	}
	if err := syscall.Setgid(a.gid); err != nil {
		return fmt.Errorf("user: setgid %d for %s: %w", a.gid, a.name, err)
	}
	if err := syscall.Setuid(a.uid); err != nil {
		return fmt.Errorf("user: setuid %d for %s: %w", a.uid, a.name, err)
	}
	if os.Getuid() != a.uid || os.Geteuid() != a.uid || os.Getgid() != a.gid || os.Getegid() != a.gid {
		return fmt.Errorf("user: switched to %s, but running as uid %d/%d gid %d/%d", a.name,
			os.Getuid(), os.Geteuid(), os.Getgid(), os.Getegid())
	}
	if syscall.Setuid(0) == nil {
		return errors.New("user: root could be taken back after switching to " + a.name)
	}
	return nil
}
