#!/usr/bin/env bash
# Benchmarks (not tests): run with `make bench` (builds release first). Every figure is measured in the same run
# as its baseline (curl, wc -l, jq), on loopback, and printed as a ratio. Reproducible with fixed seeds.
#   PATIENTS=20000 bash Scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release/cohort}
PATIENTS=${PATIENTS:-20000}
OUT=${OUT:-/tmp/cohort-bench}
PORT=${PORT:-18777}
rm -rf "$OUT"; mkdir -p "$OUT"
[ -x "$BIN" ] || { echo "build first: swift build -c release"; exit 1; }
rss() { awk '/Maximum resident/ {printf "%.1f MB", $6/1024}' "$1"; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[1]):.3f}')" "$1"; }
now() { date +%s.%N; }

echo "== start to prompt (release, pseudo-terminal, median of 20)"
python3 - "$BIN" <<'PY'
import os, pty, sys, time, select, statistics
times = []
for _ in range(20):
    t0 = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["COHORT_HISTFILE"] = ""
        os.execv(sys.argv[1], [sys.argv[1], "--workspace", "/tmp/cohort-bench-prompt"])
    buf = b""
    while b"cohort>" not in buf:
        r, _, _ = select.select([fd], [], [], 5)
        if not r: break
        try: buf += os.read(fd, 4096)
        except OSError: break
    times.append((time.perf_counter() - t0) * 1000)
    os.kill(pid, 9); os.waitpid(pid, 0); os.close(fd)
print(f"start to prompt: median {statistics.median(times):.1f} ms, max {max(times):.1f} ms")
PY

echo "== built-in server: $PATIENTS patients, files of 50k resources"
$BIN serve --port $PORT --patients "$PATIENTS" --seed 1 --resources-per-file 50000 --exit-after 3600 > "$OUT/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -s "http://127.0.0.1:$PORT/metadata" >/dev/null && break; sleep 0.2; done
BASE="http://127.0.0.1:$PORT"

echo "== export: cohort vs curl (4 in parallel) on the same server"
# curl: kick-off, poll, then fetch every output URL 4 at a time.
status=$(curl -s -D - -o /dev/null -H 'Accept: application/fhir+json' -H 'Prefer: respond-async' \
  "$BASE/Group/all-patients/\$export" | awk 'tolower($1)=="content-location:" {print $2}' | tr -d '\r')
t0=$(now)
until curl -s -f -o "$OUT/manifest.json" -w '%{http_code}' "$status" | grep -q 200; do sleep 0.5; done
t1=$(now)
mkdir -p "$OUT/curl"
jq -r '.output[].url' "$OUT/manifest.json" > "$OUT/urls"
files=$(wc -l < "$OUT/urls")
t2=$(now)
( cd "$OUT/curl" && xargs -P 4 -n 1 curl -s -f -O < "$OUT/urls" )
t3=$(now)
bytes=$(cat "$OUT"/curl/* | wc -c)
curl_dl=$(python3 -c "print($t3-$t2)")
echo "server generation (first export, poll to manifest): $(secs $(python3 -c "print($t1-$t0)")) s"
echo "curl: $files files, $((bytes/1000000)) MB in $(secs $curl_dl) s = $(python3 -c "print(f'{$bytes/1e6/$curl_dl:.0f}')") MB/s"

WS="$OUT/ws"
$BIN --workspace "$WS" -c "server add b $BASE; cohort add all --server b --group all-patients" 2>/dev/null
t4=$(now)
/usr/bin/time -v $BIN --workspace "$WS" export all --parallel 4 > "$OUT/export.out" 2> "$OUT/export.err"
t5=$(now)
resources=$(awk '$1=="resources" {print $2}' "$OUT/export.out")
total=$(python3 -c "print($t5-$t4)")
echo "cohort export (kick-off → committed snapshot, incl. verification and index): $resources resources in $(secs $total) s, peak RSS $(rss "$OUT/export.err")"
grep -E "^done:|^committed snapshot" "$OUT/export.err" || true

echo "== summary of files vs wc -l and jq (same files)"
dir=$(ls -d "$WS"/all/0001)
t6=$(now); $BIN summary "$dir" > /dev/null; t7=$(now)
t8=$(now); cat "$dir"/*.ndjson | wc -l > /dev/null; t9=$(now)
t10=$(now); cat "$dir"/*.ndjson | jq -c .resourceType | sort | uniq -c > /dev/null; t11=$(now)
python3 - "$t6" "$t7" "$t8" "$t9" "$t10" "$t11" <<'PY'
import sys
a=[float(x) for x in sys.argv[1:]]
s, w, j = a[1]-a[0], a[3]-a[2], a[5]-a[4]
print(f"summary {s:.3f} s, wc -l {w:.3f} s, jq {j:.3f} s → {w/s:.2f}× wc -l, {j/s:.1f}× faster than jq")
PY

echo "== index: summary and diff from the store"
curl -s -X POST "$BASE/\$admin/advance?days=1" > /dev/null
$BIN --workspace "$WS" export all --incremental > "$OUT/inc.out" 2> "$OUT/inc.err"
for cmd in "summary all" "diff all"; do
  t0=$(now); $BIN --workspace "$WS" $cmd > /dev/null; t1=$(now)
  echo "$cmd: $(secs $(python3 -c "print($t1-$t0)")) s"
done
echo "incremental export: $(awk '$1=="resources" {print $2}' "$OUT/inc.out") resources"
