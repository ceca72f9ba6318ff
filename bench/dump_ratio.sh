#!/usr/bin/env bash
# ewpcap_dump -n -r against tcpdump -n -r on a 200,000-packet savefile
# (test/data/known.pcap's packets, repeated): the best of 3 wall-clock
# times of each, and their ratio (issue 16: at most 3x).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-_build/bench}
mkdir -p "$out"
file=$out/dump200k.pcap
if [ ! -s "$file" ]; then
  erl -noshell -pa ebin -eval '
    {ok, 1, Snap, Recs} = ewpcap_pcap_file:read_file("test/data/known.pcap"),
    N = length(Recs),
    All = [lists:nth(I rem N + 1, Recs) || I <- lists:seq(0, 199999)],
    {ok, W} = ewpcap_pcap_file:open_write("'"$file"'", #{snaplen => Snap, dlt => 1}),
    {ok, W1} = ewpcap_pcap_file:write(W, 1, All),
    ok = ewpcap_pcap_file:close_write(W1), halt().'
fi
best() {
  local b=
  for _ in 1 2 3; do
    local s e t
    s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N)
    t=$(echo "$e - $s" | bc -l)
    if [ -z "$b" ] || [ "$(echo "$t < $b" | bc -l)" = 1 ]; then b=$t; fi
  done
  printf '%.3f' "$b"
}
t=$(best tcpdump -n -r "$file")
e=$(best bin/ewpcap_dump -n -r "$file")
printf 'ewpcap_dump -n -r, 200000 packets: %s s; tcpdump: %s s; ratio %.2fx (target <= 3x)\n' \
  "$e" "$t" "$(echo "$e / $t" | bc -l)"
