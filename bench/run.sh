#!/usr/bin/env bash
# make bench: packet capture throughput, drops, CPU and latency of ewpcap
# against bare libpcap and plain Erlang distribution. Run as root from the
# top of the tree after `make` (the Makefile's bench target does both).
#
# Three network namespaces, all deleted on exit (trap EXIT), with every
# process left in them killed first:
#
#   ewp_bench_gen_<pid>   bg0 10.201.0.1/24 ── veth ── bc0 (no address)   ewp_bench_cap_<pid>
#   (bench/out/pktgen)                                  cx0 10.201.1.1/24
#                                                        │ veth
#   ewp_bench_cli_<pid>   cx1 10.201.1.2/24 ───────────┘
#
# pktgen sends UDP to 10.201.0.2:9000 as whole Ethernet frames through a
# packet socket on bg0, addressed to bc0's MAC (BENCH_GEN_DEV/BENCH_DST_MAC;
# a static neighbour entry also lets a UDP socket reach it); bc0 has no
# address and forwarding is off, so the capture namespace drops every
# datagram after the captures saw it. pktgen runs pinned to CPU 0 and all
# else on the other CPUs (BENCH_GEN_CPU; "none" to let everything float).
# The captures read bc0. No traffic leaves these namespaces; every run is
# bounded (packet counts, pktgen/pcapcount time limits, a global timeout).
#
# Environment: BENCH_COUNT (packets per row, 400000; paced rows send at most
# BENCH_ROW_SECS (5) seconds worth), BENCH_RATES
# (20000,50000,100000,250000,500000,0; 0 = unpaced), BENCH_SIZES (64,1000), BENCH_MODES
# (ceiling,default,default_norelay,default_untuned,batch64,remote,remote_untuned,remote_batch64,
# remote_tls,remote_tls_batch64 -- the *_untuned rows on a connection made with
# {dist_buffer, false}, the before of the distribution buffer; the tls rows over
# TLS distribution, certificates made with openssl in bench/out/tls; also
# snap1600: default options with {snaplen, 1600}), BENCH_TIMEOUT (seconds, 900),
# BENCH_README=0 (do not write the table into README.md; bench/out/table.md
# is written anyway), BENCH_TLS_ERL (the erl of the TLS client node, e.g. a
# wrapper that runs an OTP 27 root's in chroot with this tree bound at the
# same path), BENCH_TLS_CLIENT_OPTS (more ssl options of that node, an
# Erlang list: "[{versions, ['tlsv1.2']}]"). A target that fails makes the
# run exit 1.
#
# Before/after: BENCH_EWPCAPD_BEFORE=/path/to/old/ewpcapd runs every row
# that runs ewpcapd (default, batch64, snap1600, remote, remote_batch64,
# remote_tls, remote_tls_batch64) also with that binary (a second
# same-host, remote and TLS daemon beside the current ones; the TLS ones
# share the TLS client node), in the same run: BENCH_REPEAT runs of each binary per
# (mode, size, rate), paced rates too, interleaved current, before,
# current, ... The main table and the targets are the current binary's;
# then a before/after table (bench/out/before_after.md): delivered pps,
# drops, on-CPU µs per packet of ewpcapd and of the receiving node (from
# schedstat, ns), after/before ratios and each binary's run-to-run spread.
# results.json/csv carry both binaries' rows ("daemon": "current" |
# "before"; csv: a last column, daemon). It doubles the ewpcapd rows and
# triples the paced ones: trim BENCH_RATES/BENCH_SIZES or raise
# BENCH_TIMEOUT. E.g. (build the old binary from a worktree of the old
# commit):
#   BENCH_EWPCAPD_BEFORE=/tmp/old/priv/ewpcapd BENCH_RATES=100000,250000,0 \
#     BENCH_TIMEOUT=1500 make bench
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=$ROOT/bench/out

if [ "$(id -u)" -ne 0 ]; then
  echo "bench: needs root (network namespaces, packet capture)" >&2
  exit 1
fi
for t in ip erl gnuplot; do
  command -v "$t" >/dev/null || { echo "bench: $t not found (make deps)" >&2; exit 1; }
done

ID=$$
GEN=ewp_bench_gen_$ID
CAP=ewp_bench_cap_$ID
CLI=ewp_bench_cli_$ID
DRIVER_PID=

cleanup() {
  set +e
  if [ -n "$DRIVER_PID" ] && kill -0 "$DRIVER_PID" 2>/dev/null; then
    kill "$DRIVER_PID" 2>/dev/null
    sleep 1
    kill -9 "$DRIVER_PID" 2>/dev/null
  fi
  # processes the bench started inside its namespaces (pktgen, pcapcount,
  # ewpcapd, the client node, the epmds they started)
  for ns in "$GEN" "$CAP" "$CLI"; do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [ -z "$pids" ] || kill $pids 2>/dev/null
  done
  sleep 0.5
  for ns in "$GEN" "$CAP" "$CLI"; do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [ -z "$pids" ] || kill -9 $pids 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$OUT"
rm -f "$OUT/results.json" "$OUT/results.csv" "$OUT/plot.gp" "$OUT/plot.png"

nsx() { ip netns exec "$1" "${@:2}"; }

for ns in "$GEN" "$CAP" "$CLI"; do
  ip netns add "$ns"
  nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
    net.ipv4.ip_forward=0
  ip -n "$ns" link set lo up
done
ip -n "$GEN" link add bg0 type veth peer name bc0 netns "$CAP"
ip -n "$CAP" link add cx0 type veth peer name cx1 netns "$CLI"
ip -n "$GEN" addr add 10.201.0.1/24 dev bg0
ip -n "$CAP" addr add 10.201.1.1/24 dev cx0
ip -n "$CLI" addr add 10.201.1.2/24 dev cx1
ip -n "$GEN" link set bg0 up
ip -n "$CAP" link set bc0 up
ip -n "$CAP" link set cx0 up
ip -n "$CLI" link set cx1 up
MAC=$(ip -n "$CAP" -o link show bc0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
ip -n "$GEN" neigh replace 10.201.0.2 lladdr "$MAC" dev bg0 nud permanent

# CPUs: pktgen (and the kernel's veth receive path, which runs in its
# context) on BENCH_GEN_CPU, everything measured (the bench node, the
# daemons, pcapcount, the peer and client nodes) on the other CPUs, so
# every row's pipeline, the Erlang baselines' too, gets the same CPUs and
# the generator offers the same load whatever the row costs.
NCPU=$(nproc)
if [ "${BENCH_GEN_CPU:-}" = none ] || [ "$NCPU" -lt 2 ]; then
  export BENCH_GEN_CPU=none
  PIN=()
else
  export BENCH_GEN_CPU=${BENCH_GEN_CPU:-0}
  REST=$(seq 0 $((NCPU - 1)) | grep -vx "$BENCH_GEN_CPU" | paste -sd, -)
  PIN=(taskset -c "$REST")
  echo "bench: pktgen on CPU $BENCH_GEN_CPU, the rest on CPU $REST"
fi

COOKIE=ewpbench$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
export BENCH_ROOT=$ROOT BENCH_OUT=$OUT BENCH_GEN_NS=$GEN BENCH_CAP_NS=$CAP BENCH_CLI_NS=$CLI
export BENCH_GEN_DEV=bg0 BENCH_DST_MAC=$MAC
export BENCH_DST=10.201.0.2 BENCH_CAP_DEV=bc0 BENCH_CAP_ADDR=10.201.1.1 BENCH_CLI_ADDR=10.201.1.2

set +e
timeout -k 10 "${BENCH_TIMEOUT:-900}" \
  "${PIN[@]}" erl -noshell -sname "ewp_bench_$ID" -setcookie "$COOKIE" +C multi_time_warp \
      -pa "$ROOT/ebin" -pa "$OUT/ebin" -run ewpcap_bench main &
DRIVER_PID=$!
wait "$DRIVER_PID"
status=$?
DRIVER_PID=
set -e

if [ -f "$OUT/plot.gp" ]; then
  (cd "$OUT" && gnuplot plot.gp) && echo "bench: wrote $OUT/plot.png"
fi
if [ -f "$OUT/results.json" ]; then
  bash bench/readme_table.sh "$OUT/results.json" > "$OUT/table.md"
  echo "bench: wrote $OUT/table.md"
  # only a run of every row (no BENCH_MODES subset) stands in the README
  readme_default=1
  [ -z "${BENCH_MODES:-}" ] || readme_default=0
  if [ "${BENCH_README:-$readme_default}" != 0 ]; then
    bash bench/readme_table.sh "$OUT/results.json" README.md
  fi
fi

case $status in
  0) exit 0 ;;
  3) echo "bench: some targets FAILED (see above)" >&2
     exit 1 ;;
  *) echo "bench: the run did not complete (status $status)" >&2; exit 1 ;;
esac
