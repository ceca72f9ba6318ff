#!/usr/bin/env bash
# The README's performance table, made from a bench run's results.json
# (bench/out/results.json by default), never pasted by hand: each frame
# size's rows ranked by CPU per delivered packet (ewpcapd's, or
# pcapcount's, or the sending node's, plus the receiving node's), beside
# delivered pps and drops, then the targets as the run judged them.
#
#   bench/readme_table.sh [results.json]            the table on stdout
#   bench/readme_table.sh results.json README.md    replace the text between
#                                                   the bench-table markers
# make bench runs the second form (BENCH_README=0, or a BENCH_MODES subset:
# only bench/out/table.md).
set -euo pipefail
JSON=${1:-bench/out/results.json}
README=${2:-}
command -v jq >/dev/null || { echo "readme_table: jq not found (make deps)" >&2; exit 1; }
[ -f "$JSON" ] || { echo "readme_table: no $JSON (run make bench first)" >&2; exit 1; }

table() {
  jq -r '
    def th: tostring | if length > 3 then (.[:-3] | th) + "," + .[-3:] else . end;
    def int: if . == null then "-" else (. + 0.5 | floor | th) end;
    def f2: if . == null then "-" else ((. * 100 + 0.5 | floor) / 100 | tostring
              | if test("\\.") then (. + "0" | capture("(?<a>[^.]*\\.[0-9]{2})").a) else . + ".00" end) end;
    def rate: if . == 0 then "unpaced" elif . % 1000 == 0 then "\(. / 1000 | floor)k" else tostring end;
    def drops: if .mode == "baseline" or .mode == "baseline_idle" then "-"
               else "\((.pcap_drop // 0) + (.pcap_ifdrop // 0) | int) / \(.daemon_drops // 0 | int)" end;
    "Run of \(.date): \(.machine); \(.count_per_row | int) packets per row (at most \(.max_secs_per_paced_row) s at a paced rate), load average \(.loadavg_at_start) at start. Rows ranked by CPU per delivered packet within each size; *daemon* is ewpcapd (pcapcount for `ceiling`, the sending node for the baselines), *node* the receiving node.",
    "",
    "| size | rank | row | rate | CPU µs/pkt | daemon | node | delivered pps | offered pps | drops pcap / ewpcapd | x ceiling |",
    "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ( [.rows[] | select(.error == null and (.daemon // "current") != "before"
                        and (.cpu_us_per_pkt // 0) > 0 and (.delivered_pps // 0) > 0)]
      | group_by(.size)[] | sort_by(.cpu_us_per_pkt) | to_entries[]
      | .key as $i | .value
      | "| \(.size) | \($i + 1) | \(.mode) | \(.rate | rate) | \(.cpu_us_per_pkt | f2) | \(.cpu_daemon_us_per_pkt | f2) | \(.cpu_beam_us_per_pkt | f2) | \(.delivered_pps | int) | \(.offered_pps | int) | \(drops) | \(.x_ceiling | f2) |" ),
    "",
    "Targets of that run:",
    "",
    "```",
    ( .targets[] | "\(if .pass then "PASS" else "FAIL" end)  \(.name)\n      \(.detail)" ),
    "```"
  ' "$JSON"
}

if [ -z "$README" ]; then
  table
  exit 0
fi

BEGIN='<!-- bench-table begin: written by bench/readme_table.sh from results.json, do not edit -->'
END='<!-- bench-table end -->'
grep -qxF "$BEGIN" "$README" && grep -qxF "$END" "$README" ||
  { echo "readme_table: $README has no bench-table markers" >&2; exit 1; }
TMP=$(mktemp)
trap 'rm -f "$TMP"' EXIT
table > "$TMP.table"
awk -v b="$BEGIN" -v e="$END" -v t="$TMP.table" '
  $0 == b { print; while ((getline l < t) > 0) print l; skip = 1; next }
  $0 == e { skip = 0 }
  !skip { print }' "$README" > "$TMP"
rm -f "$TMP.table"
cat "$TMP" > "$README"
echo "readme_table: wrote the table of $JSON into $README"
