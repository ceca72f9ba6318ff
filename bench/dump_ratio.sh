#!/usr/bin/env bash
# ewpcap_dump -n -r against tcpdump -n -r on a 200,000-packet savefile
# (test/data/known.pcap's packets, repeated): the best of 5 wall-clock
# times of each, and their ratio (issue 16: at most 3x). With
# DUMP_BEFORE=/path/to/an/older/ewpcap_dump, that one too, its runs
# interleaved with the others' (a before/after in the same load).
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
# one timed run of "$@", seconds
timed() {
  local s e
  s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N)
  echo "$e - $s" | bc -l
}
min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi; }
t= e= b=
before=${DUMP_BEFORE:-}
for _ in 1 2 3 4 5; do
  t=$(min "$t" "$(timed tcpdump -n -r "$file")")
  e=$(min "$e" "$(timed bin/ewpcap_dump -n -r "$file")")
  if [ -n "$before" ]; then b=$(min "$b" "$(timed "$before" -n -r "$file")"); fi
done
printf 'ewpcap_dump -n -r, 200000 packets: %.3f s; tcpdump: %.3f s; ratio %.2fx (target <= 3x)\n' \
  "$e" "$t" "$(echo "$e / $t" | bc -l)"
if [ -n "$before" ]; then
  printf 'before (%s): %.3f s; ratio %.2fx\n' "$before" "$b" "$(echo "$b / $t" | bc -l)"
fi
