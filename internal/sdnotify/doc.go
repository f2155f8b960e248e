// Package sdnotify tells a service manager how the process is doing, with
// systemd's notification protocol (sd_notify(3)): a Notifier sends
// "READY=1", "RELOADING=1", "STOPPING=1" and "STATUS=..." lines as one
// datagram each to the unix socket the manager named in $NOTIFY_SOCKET.
// A unit with Type=notify is started once READY=1 arrives, not when the
// process is forked.
//
// The protocol is a datagram of newline-separated VAR=value lines; a
// socket name starting with '@' is in the abstract namespace (Linux).
// Nothing else is needed, so this is a few lines of code rather than a
// dependency.
//
// A Notifier holds no state but the socket's address: its methods are
// safe for concurrent use. The zero Notifier (no $NOTIFY_SOCKET: not run
// by a service manager that asked) sends nothing.
package sdnotify
