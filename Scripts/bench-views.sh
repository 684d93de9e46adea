#!/usr/bin/env bash
# `view run` throughput (issue 14): the built-in server generates the data, cohort exports it, then `view run` over
# the whole cohort is timed with /usr/bin/time -v, with 1 worker and with every core (COHORT_VIEW_WORKERS), and the
# outputs must be byte-identical. Two views over Observation: the HbA1c view of Notebooks/views (a `where` that
# keeps few rows) and a flat one-row-per-Observation view (every resource gives a row, so rows/s counts the writing
# too). The same views over a smaller cohort from the same server (diabetes-patients, about a third of the
# resources) show whether peak RSS grows with the cohort. Not a test; fixed seed, loopback only. Part of
# `make bench` (BENCH_VIEWS=0 skips it); on its own:
#   swift build -c release --product cohort && bash Scripts/bench-views.sh
#
#   PATIENTS=170000           patients of the server: 2.2 M resources, of which 1.0 M Observations (the rows' source);
#                             80000 gives 1.04 M resources, 470 k Observations
#   VIEW=Notebooks/views/hba1c.json   the selective view
#   OUT=/tmp/cohort-bench-views       scratch folder (removed and recreated; 2.8 GB at 170 k patients, 1.3 GB at 80 k)
#   ROWS=FILE                 also append the figures as tab-separated rows (name, value, unit, note) — bench.sh's table
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release/cohort}
PATIENTS=${PATIENTS:-170000}
OUT=${OUT:-/tmp/cohort-bench-views}
PORT=${PORT:-18787}
VIEW=${VIEW:-Notebooks/views/hba1c.json}
ROWS=${ROWS:-}
CORES=$(nproc)
[ -x "$BIN" ] || { echo "build first: swift build -c release --product cohort"; exit 1; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)"; exit 1; }
rm -rf "$OUT"; mkdir -p "$OUT"
WS="$OUT/ws"
export COHORT_HISTFILE=""
field() { awk -F': ' -v k="$2" 'index($0, k) {print $2}' "$1" | tail -1; }
wall() { field "$1" "Elapsed (wall clock)" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }'; }
rss_mb() { field "$1" "Maximum resident" | awk '{printf "%.1f", $1/1024}'; }
cpu_s() { python3 -c "import sys; print(f'{float(sys.argv[1])+float(sys.argv[2]):.2f}')" "$(field "$1" "User time")" "$(field "$1" "System time")"; }
row() { [ -z "$ROWS" ] || printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$ROWS"; }

echo "== view bench: $CORES cores, load $(cut -d' ' -f1-3 /proc/loadavg), $($BIN --version), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "== built-in server: $PATIENTS patients (seed 1)"
$BIN serve --port "$PORT" --patients "$PATIENTS" --seed 1 --resources-per-file 50000 --exit-after 3600 > "$OUT/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 600); do curl -s -f "http://127.0.0.1:$PORT/metadata" >/dev/null 2>&1 && break; sleep 0.2; done
$BIN --workspace "$WS" -c "server add b http://127.0.0.1:$PORT; cohort add all --server b --group all-patients; cohort add dm --server b --group diabetes-patients" > /dev/null 2>&1
$BIN --workspace "$WS" export all --parallel 4 > "$OUT/export-all.out" 2>&1
$BIN --workspace "$WS" export dm --parallel 4 > "$OUT/export-dm.out" 2>&1
kill $SERVER 2>/dev/null || true

lines() { case "$1" in *.gz) zcat "$1" | grep -c . ;; *) grep -c . "$1" ;; esac; }
count() { # resources of a type in a cohort's first snapshot
  local n=0
  for f in "$WS/$1"/0001/"$2".*ndjson*; do if [ -e "$f" ]; then n=$((n + $(lines "$f"))); fi; done
  echo $n
}
total() { local n=0; for f in "$WS/$1"/0001/*.ndjson*; do case "$f" in */log.ndjson) ;; *) n=$((n + $(lines "$f"))) ;; esac; done; echo $n; }
type=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['resource'])" "$VIEW")
ALL_TOTAL=$(total all); DM_TOTAL=$(total dm)
ALL_N=$(count all "$type"); DM_N=$(count dm "$type")
echo "cohort 'all': $ALL_TOTAL resources, $ALL_N $type; cohort 'dm': $DM_TOTAL resources, $DM_N $type"

# One row per Observation: every resource read gives a row.
FLAT="$OUT/observations.json"
cat > "$FLAT" <<'EOF'
{"resourceType": "ViewDefinition", "name": "observations", "status": "active", "resource": "Observation",
 "select": [{"column": [
   {"name": "observation_id", "path": "getResourceKey()", "type": "string"},
   {"name": "patient_id", "path": "subject.getReferenceKey(Patient)", "type": "string"},
   {"name": "code", "path": "code.coding.first().code", "type": "code"},
   {"name": "effective", "path": "effective.ofType(dateTime)", "type": "dateTime"},
   {"name": "value", "path": "value.ofType(Quantity).value", "type": "decimal"}]}]}
EOF

run() { # VIEW COHORT WORKERS → prints a line, sets RATE ROWRATE RSS
  local view=$1 cohort=$2 workers=$3 name tag resources
  name=$(basename "$view" .json); tag="$name.$cohort.$workers"
  COHORT_VIEW_WORKERS=$workers /usr/bin/time -v "$BIN" --workspace "$WS" view run "$view" "$cohort" --format csv \
    --out "$OUT/rows.$tag.csv" > /dev/null 2> "$OUT/time.$tag"
  local secs rows
  secs=$(wall "$OUT/time.$tag")
  rows=$(($(wc -l < "$OUT/rows.$tag.csv") - 1))
  resources=$(count "$cohort" "$type")
  RSS=$(rss_mb "$OUT/time.$tag"); CPU=$(cpu_s "$OUT/time.$tag"); SECS=$secs
  read -r RATE ROWRATE < <(python3 -c "import sys; r,n,s=map(float,sys.argv[1:]); print(f'{r/s:.0f} {n/s:.0f}')" "$resources" "$rows" "$secs")
  printf '  %-18s %-3s workers=%s: %9s %s in %6.2f s (CPU %s s) = %4d k resources/s, %4d k rows/s (%s rows), peak RSS %s MB\n' \
    "$name" "$cohort" "$workers" "$resources" "$type" "$secs" "$(cpu_s "$OUT/time.$tag")" "$((RATE / 1000))" "$((ROWRATE / 1000))" "$rows" "$RSS"
}
same() { cmp -s "$1" "$2" && echo "  outputs with 1 and $CORES workers are byte-identical" \
  || { echo "ERROR: $1 and $2 differ"; exit 1; }; }
verdict() { python3 -c "import sys; v,l=float(sys.argv[1]),float(sys.argv[2]); print('goal ' + sys.argv[3] + (': met' if v >= l else f': NOT met ({l/v:.1f}× off)'))" "$@"; }

echo "== view run ($CORES cores; --format csv --out FILE; wall and peak RSS from /usr/bin/time -v)"
H=$(basename "$VIEW" .json)
run "$VIEW" all 1; H1=$RATE; H1R=$ROWRATE; H1RSS=$RSS; H1T="$SECS s wall, $CPU s CPU"
run "$VIEW" all "$CORES"; HN=$RATE; HNR=$ROWRATE; HNRSS=$RSS; HNT="$SECS s wall, $CPU s CPU"
same "$OUT/rows.$H.all.1.csv" "$OUT/rows.$H.all.$CORES.csv"
run "$FLAT" all 1; F1=$RATE; F1R=$ROWRATE; F1RSS=$RSS; F1T="$SECS s wall, $CPU s CPU"
run "$FLAT" all "$CORES"; FN=$RATE; FNR=$ROWRATE; FNRSS=$RSS; FNT="$SECS s wall, $CPU s CPU"
same "$OUT/rows.observations.all.1.csv" "$OUT/rows.observations.all.$CORES.csv"
run "$VIEW" dm "$CORES"; SRSS=$RSS
run "$FLAT" dm "$CORES"; SFRSS=$RSS
G="≥ 200 k res/s on $CORES cores"
k() { echo $(($1 / 1000)); }
row "view run $H.json, 1 worker ($ALL_N $type of $ALL_TOTAL resources)" "$(k "$H1")" "k res/s" "$(k "$H1R") k rows/s ($H1T), peak RSS $H1RSS MB"
row "view run $H.json, $CORES workers" "$(k "$HN")" "k res/s" "$(k "$HNR") k rows/s ($HNT), peak RSS $HNRSS MB; $(verdict "$HN" 200000 "$G"); output byte-identical to 1 worker"
row "view run observations (1 row per resource), 1 worker" "$(k "$F1")" "k res/s" "$(k "$F1R") k rows/s ($F1T), peak RSS $F1RSS MB"
row "view run observations, $CORES workers" "$(k "$FN")" "k res/s" "$(k "$FNR") k rows/s ($FNT), peak RSS $FNRSS MB; $(verdict "$FN" 200000 "$G"); byte-identical"
row "view run peak RSS, small cohort ($DM_N $type) vs all" "$SRSS / $HNRSS" MB "$H.json, $CORES workers; observations: $SFRSS / $FNRSS MB"
echo "  peak RSS, $CORES workers: $H.json $SRSS MB (dm, $DM_N $type) vs $HNRSS MB (all, $ALL_N); observations $SFRSS MB vs $FNRSS MB"
echo "  $(verdict "$HN" 200000 "$G") ($H.json); $(verdict "$FN" 200000 "$G") (observations)"
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
