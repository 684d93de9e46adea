#!/usr/bin/env bash
# `view run` throughput (issue 14): the built-in server generates the data (≥ 1 M resources by default), cohort
# exports it, then `view run` of a view over the whole cohort is timed with /usr/bin/time -v, with 1 worker and
# with every core (COHORT_VIEW_WORKERS), and the outputs must be byte-identical. A smaller cohort from the same
# server shows that peak RSS does not grow with the cohort. Not a test; fixed seed, loopback only.
#   swift build -c release && PATIENTS=80000 bash Scripts/bench-views.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release/cohort}
PATIENTS=${PATIENTS:-80000}
OUT=${OUT:-/tmp/cohort-bench-views}
PORT=${PORT:-18787}
VIEW=${VIEW:-Notebooks/views/hba1c.json}
CORES=$(nproc)
[ -x "$BIN" ] || { echo "build first: swift build -c release"; exit 1; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)"; exit 1; }
rm -rf "$OUT"; mkdir -p "$OUT"
WS="$OUT/ws"
export COHORT_HISTFILE=""
field() { awk -F': ' -v k="$2" 'index($0, k) {print $2}' "$1" | tail -1; }
wall() { field "$1" "Elapsed (wall clock)" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }'; }
rss_mb() { field "$1" "Maximum resident" | awk '{printf "%.1f", $1/1024}'; }

echo "== built-in server: $PATIENTS patients (seed 1)"
$BIN serve --port "$PORT" --patients "$PATIENTS" --seed 1 --resources-per-file 50000 --exit-after 3600 > "$OUT/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s "http://127.0.0.1:$PORT/metadata" >/dev/null && break; sleep 0.2; done
$BIN --workspace "$WS" -c "server add b http://127.0.0.1:$PORT; cohort add all --server b --group all-patients; cohort add dm --server b --group diabetes-patients" > /dev/null
$BIN --workspace "$WS" export all --parallel 4 > "$OUT/export-all.out"
$BIN --workspace "$WS" export dm --parallel 4 > "$OUT/export-dm.out"
kill $SERVER 2>/dev/null || true

count() { # resources of a type in a cohort's first snapshot
  local n=0
  for f in "$WS/$1"/0001/"$2".*ndjson*; do
    [ -e "$f" ] || continue
    case "$f" in *.gz) n=$((n + $(zcat "$f" | grep -c .))) ;; *) n=$((n + $(grep -c . "$f"))) ;; esac
  done
  echo $n
}
type=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['resource'])" "$VIEW")
total=0
for f in "$WS"/all/0001/*.ndjson*; do case "$f" in *.gz) total=$((total + $(zcat "$f" | grep -c .))) ;; *) total=$((total + $(grep -c . "$f"))) ;; esac; done
echo "cohort 'all': $total resources, $(count all "$type") $type; cohort 'dm': $(count dm "$type") $type"

run() { # cohort workers → prints a line
  local cohort=$1 workers=$2 tag="$1.$2"
  COHORT_VIEW_WORKERS=$workers /usr/bin/time -v "$BIN" --workspace "$WS" view run "$VIEW" "$cohort" --format csv \
    --out "$OUT/rows.$tag.csv" > /dev/null 2> "$OUT/time.$tag"
  local secs rows resources
  secs=$(wall "$OUT/time.$tag")
  rows=$(($(wc -l < "$OUT/rows.$tag.csv") - 1))
  resources=$(count "$cohort" "$type")
  python3 -c "import sys; r,w,s,n,c,rss=sys.argv[1:]; s=float(s); print(f'view run $(basename $VIEW) {c} workers={w}: {int(r):,} {\"$type\"} in {s:.2f} s = {int(r)/s/1000:.0f} k resources/s, {int(n)/s/1000:.0f} k rows/s ({int(n):,} rows), peak RSS {rss} MB')" \
    "$resources" "$workers" "$secs" "$rows" "$cohort" "$(rss_mb "$OUT/time.$tag")"
}
echo "== view run ($CORES cores)"
run all 1
run all "$CORES"
cmp -s "$OUT/rows.all.1.csv" "$OUT/rows.all.$CORES.csv" && echo "outputs with 1 and $CORES workers are byte-identical" \
  || { echo "ERROR: outputs differ between 1 and $CORES workers"; exit 1; }
run dm "$CORES"
