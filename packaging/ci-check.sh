#!/usr/bin/env bash
# Builds the Debian package and puts it through what an operator does with
# it, on this machine, as root: install with dpkg -i, check the files and
# the systemd unit (systemd-analyze verify), run the installed binary with
# the packaged configuration — as the shoal user, as the unit does, and
# started as root, when it must switch to shoal itself — with a
# mosquitto_pub/mosquitto_sub round trip, then purge: the data stays, and
# goes only when asked (SHOAL_PURGE_DATA=yes).
#
# .ci/run calls it after make test. It needs root, dpkg, setpriv
# (util-linux), systemd-analyze (Debian's systemd package) and the
# mosquitto clients, and leaves the machine as it found it: the package
# purged, /var/lib/shoal gone, and the shoal user removed if it made it.
# Time: 17 s with a warm build cache; on a fresh machine up to 3 minutes
# (measured on a busy 2-core one), nearly all of it compiling the static
# binary (CGO_ENABLED=0 shares nothing with the tests' builds) and nfpm.
set -euo pipefail
cd "$(dirname "$0")/.."

steps=0
say() {
	echo "--- ci-check: $*"
	steps=$((steps + 1))
}
fail() {
	echo "ci-check: FAIL: $*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || fail "run as root: it installs and purges the package"
for tool in dpkg setpriv systemd-analyze mosquitto_pub mosquitto_sub; do
	command -v "$tool" >/dev/null || fail "$tool is missing"
done
if dpkg -s shoal >/dev/null 2>&1; then
	fail "a shoal package is installed already; purge it first (dpkg --purge shoal)"
fi
[ ! -e /var/lib/shoal ] || fail "/var/lib/shoal exists: it may be someone's data; move it away first"
made_user=
getent passwd shoal >/dev/null || made_user=yes

broker=          # pid of a running broker
log=$(mktemp)
cleanup() {
	if [ -n "$broker" ]; then
		kill "$broker" 2>/dev/null || true
		wait "$broker" 2>/dev/null || true
	fi
	if dpkg -s shoal >/dev/null 2>&1; then
		SHOAL_PURGE_DATA=yes dpkg --purge shoal >/dev/null || true
	fi
	rm -rf /var/lib/shoal
	if [ -n "$made_user" ] && getent passwd shoal >/dev/null; then
		userdel shoal || true
	fi
	rm -f "$log"
}
trap cleanup EXIT

say "make deb"
make --no-print-directory deb
debs=(build/shoal_*.deb)
[ ${#debs[@]} = 1 ] || fail "want one package in build/, found ${debs[*]}"
deb=${debs[0]}
say "$deb: $(du -h "$deb" | cut -f1)"

say "dpkg -i"
dpkg -i "$deb"
getent passwd shoal >/dev/null || fail "no shoal user after install"
check_stat() { # path, "owner:group mode"
	local got
	got=$(stat -c '%U:%G %a' "$1")
	[ "$got" = "$2" ] || fail "$1 is $got, want $2"
}
check_stat /usr/bin/shoal "root:root 755"
check_stat /etc/shoal/shoal.yaml "root:shoal 640"
check_stat /var/lib/shoal "shoal:shoal 750"
grep -qx '/etc/shoal/shoal.yaml' /var/lib/dpkg/info/shoal.conffiles || fail "/etc/shoal/shoal.yaml is not a conffile"
grep -qx 'user: shoal' /etc/shoal/shoal.yaml || fail "the packaged configuration lacks user: shoal"
grep -qx 'data_dir: /var/lib/shoal/store' /etc/shoal/shoal.yaml || fail "the packaged configuration lacks data_dir"
/usr/bin/shoal --version

say "systemd-analyze verify"
# Works without systemd running as PID 1: it loads the unit offline. Its
# warnings (an unknown key, a bad value) are failures too.
unit=/usr/lib/systemd/system/shoal.service
out=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify $unit: $out"
[ -z "$out" ] || fail "systemd-analyze verify $unit warns: $out"
grep -qx 'Type=notify' "$unit" || fail "the unit is not Type=notify"

# The packaged configuration listens on 127.0.0.1:1883, admin API on
# 127.0.0.1:8083. Should something else hold them (a developer's broker),
# the same file runs on free ports given by flags.
args=(-c /etc/shoal/shoal.yaml)
mqtt_port=1883
health=(-c /etc/shoal/shoal.yaml)
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if listening 1883 || listening 8083; then
	mqtt_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	admin_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	args+=(--listen "127.0.0.1:$mqtt_port" --admin-listen "127.0.0.1:$admin_port")
	health=(--url "http://127.0.0.1:$admin_port/healthz")
	say "ports 1883 or 8083 in use here: running on $mqtt_port and $admin_port"
fi

# start_broker runs /usr/bin/shoal with the packaged configuration, under
# the given command prefix, from a directory shoal cannot write (as the
# unit does: ProtectSystem=strict), and waits for /healthz.
start_broker() {
	(cd / && exec "$@" /usr/bin/shoal "${args[@]}") >"$log" 2>&1 &
	broker=$!
	for _ in $(seq 100); do
		if /usr/bin/shoal healthcheck "${health[@]}" >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$broker" 2>/dev/null || { cat "$log"; fail "the broker exited"; }
		sleep 0.1
	done
	cat "$log"
	fail "no /healthz after 10 s"
}
stop_broker() {
	kill -TERM "$broker"
	local code=0
	wait "$broker" || code=$?
	broker=
	[ "$code" = 0 ] || { cat "$log"; fail "the broker exited $code on SIGTERM"; }
}
broker_ids() { awk '/^Uid:/ {u=$2} /^Gid:/ {g=$2} END {print u ":" g}' "/proc/$broker/status"; }
want_ids="$(id -u shoal):$(id -g shoal)"

say "run as shoal, as the unit does: mosquitto_pub/sub round trip"
start_broker setpriv --reuid=shoal --regid=shoal --init-groups --
[ "$(broker_ids)" = "$want_ids" ] || fail "broker runs as $(broker_ids), want shoal's $want_ids"
mosquitto_pub -h 127.0.0.1 -p "$mqtt_port" -q 1 -r -t ci/check -m "round trip" -i ci-pub
got=$(mosquitto_sub -h 127.0.0.1 -p "$mqtt_port" -q 1 -t ci/check -C 1 -W 10 -i ci-sub)
[ "$got" = "round trip" ] || fail "mosquitto_sub got '$got', want 'round trip'"
stop_broker
owners=$(find /var/lib/shoal -not -user shoal)
[ -z "$owners" ] || fail "files in /var/lib/shoal not owned by shoal: $owners"

say "started as root: binds, switches to shoal (user: shoal), keeps the retained message"
start_broker env
[ "$(broker_ids)" = "$want_ids" ] || fail "broker started as root runs as $(broker_ids), want shoal's $want_ids"
grep -q '"listeners bound; running as user"' "$log" || fail "no log line for the switch to shoal"
got=$(mosquitto_sub -h 127.0.0.1 -p "$mqtt_port" -t ci/check -C 1 -W 10 -i ci-sub2)
[ "$got" = "round trip" ] || fail "after a restart mosquitto_sub got '$got', want the retained 'round trip'"
stop_broker
owners=$(find /var/lib/shoal -not -user shoal)
[ -z "$owners" ] || fail "files in /var/lib/shoal not owned by shoal after a start as root: $owners"

say "dpkg --purge: configuration gone, data kept"
dpkg --purge shoal
[ ! -e /usr/bin/shoal ] || fail "/usr/bin/shoal left after purge"
[ ! -e /etc/shoal/shoal.yaml ] || fail "/etc/shoal/shoal.yaml left after purge"
[ -d /var/lib/shoal/store ] || fail "purge removed /var/lib/shoal: the data must stay unless asked"

say "dpkg -i again over the kept data, then SHOAL_PURGE_DATA=yes dpkg --purge: data gone"
dpkg -i "$deb" >/dev/null
check_stat /var/lib/shoal "shoal:shoal 750"
SHOAL_PURGE_DATA=yes dpkg --purge shoal
[ ! -e /var/lib/shoal ] || fail "/var/lib/shoal left after a purge with SHOAL_PURGE_DATA=yes"

# The plain closing line CI reads: every step above passed.
echo "ci-check: $steps passed, 0 failed"
