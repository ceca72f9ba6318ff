#!/usr/bin/env bash
# make bench-scale: 1,000 handles on lo from 20 client nodes, one ewpcapd
# (bench/ewpcap_bench_scale.erl says what is measured and the targets).
# Run as root from the top of the tree after `make`. Environment:
# BENCH_SCALE_PACKETS (datagrams for the CPU per packet rows, 10000),
# BENCH_SCALE_BUFFER (each handle's kernel buffer, bytes, 16777216),
# BENCH_TIMEOUT (seconds, 600). Exit status 1 when a target is missed.
set -euo pipefail
cd "$(dirname "$0")/.."
exec timeout "${BENCH_TIMEOUT:-600}" erl -noshell -sname "ewp_bscale_$$" -connect_all false \
    -pa ebin -pa bench/out/ebin -eval 'ewpcap_bench_scale:main()'
