#!/usr/bin/env bash
# Profiles the broker under one load: builds shoal and shoalbench, starts
# shoal pinned to CPU 0 with --cpuprofile/--memprofile, drives it from CPU 1
# with shoalbench, stops it, and prints the top of both profiles.
#
#   bench/profile.sh [fanout|p2p|p2p-qos1|p2p-rate|fanin] [seconds]    (make profile)
#
# p2p-rate is p2p QoS 1 at 10,000 msg/s, the fixed rate of make bench: where
# CPU per delivery, not throughput, is the question. The broker runs in
# memory (persistence: false), as in make bench.
#
# Profiles and binaries land in bench/results/scratch/profile-<scenario>/
# (ignored by git); open them with `go tool pprof -http=: shoal cpu.prof`.
set -euo pipefail
cd "$(dirname "$0")/.."

scenario=${1:-fanout}
secs=${2:-5}
out=bench/results/scratch/profile-$scenario
mkdir -p "$out"
go build -o "$out/shoal" ./cmd/broker
go build -o "$out/shoalbench" ./bench/cmd/shoalbench

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pin=()
command -v taskset >/dev/null && pin=(taskset -c)
cpu() { if [ ${#pin[@]} -gt 0 ]; then echo "${pin[@]}" "$1"; fi; }

# Started directly (taskset execs it), so $! is the broker itself; stopped
# with SIGTERM, which background jobs of a script do not ignore.
printf 'persistence: false\nadmin_listen: ""\nallow_anonymous: true\n' >"$out/shoal.yaml"
$(cpu 0) "$out/shoal" -c "$out/shoal.yaml" --listen "127.0.0.1:$port" --log-level warn \
	--cpuprofile "$out/cpu.prof" --memprofile "$out/mem.prof" 2>"$out/broker.log" &
broker=$!
trap 'kill -KILL $broker 2>/dev/null || true' EXIT
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

gen() { $(cpu 1) "$out/shoalbench" "$@" -h 127.0.0.1 -p "$port" -i 0 --json; }
rm -f "$out/ready"
case $scenario in
fanout)   subs=(-c 1000 -t prof/fan -q 0); pubs=(-c 1 -t prof/fan -q 0 -s 64 -I 0) ;;
p2p)      subs=(-c 100 -t 'prof/%i' -q 0); pubs=(-c 100 -t 'prof/%i' -q 0 -s 64 -I 0) ;;
p2p-qos1) subs=(-c 100 -t 'prof/%i' -q 1); pubs=(-c 100 -t 'prof/%i' -q 1 -s 64 -I 0) ;;
p2p-rate) subs=(-c 100 -t 'prof/%i' -q 1); pubs=(-c 100 -t 'prof/%i' -q 1 -s 64 -I 10) ;;
fanin)    subs=(-c 5 -t prof/in -q 0); pubs=(-c 1000 -t prof/in -q 0 -s 64 -I 0) ;;
*) echo "profile.sh: unknown scenario $scenario (fanout, p2p, p2p-qos1, p2p-rate, fanin)" >&2; exit 2 ;;
esac
gen sub "${subs[@]}" --duration "$((secs + 5))s" --ready "$out/ready" >"$out/sub.json" 2>"$out/sub.log" &
sub=$!
for _ in $(seq 300); do [ -f "$out/ready" ] && break; sleep 0.1; done
gen pub "${pubs[@]}" --duration "${secs}s" >"$out/pub.json" 2>"$out/pub.log" || true
wait $sub || true
kill -TERM $broker
wait $broker || true
trap - EXIT

echo "--- load: $(grep -o '"recv_rate":[0-9.]*' "$out/sub.json") (subscribers), profiles in $out"
go tool pprof -top -nodecount 25 "$out/shoal" "$out/cpu.prof" 2>/dev/null | tail -26
echo "--- allocations (alloc_space)"
go tool pprof -sample_index=alloc_space -top -nodecount 10 "$out/shoal" "$out/mem.prof" 2>/dev/null | tail -11
