#!/usr/bin/env bash
# Benchmarks (not tests): `make bench` builds release, then runs this and prints ONE table. Every ratio is taken
# against a baseline measured in the same run, on the same machine, on loopback (curl for downloads; wc -l and jq
# for `summary DIR`), with the goals of issue 12 next to each figure. Fixed seeds: the same data every run.
#
#   PATIENTS=10000          patients of the main server (all-patients, full then incremental)
#   PATIENTS_SCALE=100000   patients of the scale row (≈ 1.3 M resources, ≈ 0.9 GB); BENCH_SCALE=0 skips it
#                           (it takes several minutes on 2 cores)
#   PATIENTS_VIEWS=170000   patients of the `view run` rows (Scripts/bench-views.sh: 2.2 M resources, of which the
#                           views read 1.0 M Observations);
#                           BENCH_VIEWS=0 skips them (they take several minutes on 2 cores)
#   GROUP_MEMBERS=1000000   members (UUID ids) of the big-Group rows (Scripts/big-group-server.py); BENCH_GROUP=0
#                           skips them
#   PARALLEL=4              parallel downloads, for curl and cohort (smart-fetch uses its own default)
#   RATE=0.01               the fraction of the resources the 7-day advance changes before the incremental
#                           (POST $admin/advance?days=7&rate=RATE; without rate the server changes ≈ 25 %)
#   TYPES=…                 the _type of every export (default: the eight types all three clients accept)
#   SMART_FETCH=path        the smart-fetch executable (default: on PATH, else /tmp/sf-venv/bin/smart-fetch)
#   OUT=/tmp/cohort-bench   scratch folder (removed and recreated)
#
# Peak RSS is /usr/bin/time -v's "Maximum resident set size" (for curl: the largest single curl process).
# The figures are written to $OUT/table.md as well.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release/cohort}
PATIENTS=${PATIENTS:-10000}
PATIENTS_SCALE=${PATIENTS_SCALE:-100000}
BENCH_SCALE=${BENCH_SCALE:-1}
PATIENTS_VIEWS=${PATIENTS_VIEWS:-170000}
BENCH_VIEWS=${BENCH_VIEWS:-1}
GROUP_MEMBERS=${GROUP_MEMBERS:-1000000}
BENCH_GROUP=${BENCH_GROUP:-1}
PARALLEL=${PARALLEL:-4}
RATE=${RATE:-0.01}
# The same _type for every client: the server's patient-compartment types (smart-fetch refuses Organization and
# Practitioner, so all three clients export these eight).
TYPES=${TYPES:-AllergyIntolerance,Condition,Encounter,Immunization,MedicationRequest,Observation,Patient,Procedure}
OUT=${OUT:-/tmp/cohort-bench}
PORT=${PORT:-18777}
[ -x "$BIN" ] || { echo "build first: swift build -c release (or make bench)"; exit 1; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian: apt-get install time)"; exit 1; }
command -v jq >/dev/null || { echo "needs jq"; exit 1; }
rm -rf "$OUT"; mkdir -p "$OUT"
ROWS="$OUT/rows.tsv"; : > "$ROWS"
SERVERS=()
trap 'for s in "${SERVERS[@]}"; do kill "$s" 2>/dev/null || true; done' EXIT

now() { date +%s.%N; }
sub() { python3 -c "import sys; print(f'{float(sys.argv[1])-float(sys.argv[2]):.3f}')" "$1" "$2"; }
# wall seconds and peak RSS (MB) out of a /usr/bin/time -v log
wall() { awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; printf "%.3f", s}' "$1"; }
rss() { awk '/Maximum resident/ {printf "%.1f", $6/1024}' "$1"; }
# row NAME VALUE UNIT NOTE — NOTE carries the ratio and the goal verdict
row() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$ROWS"; printf '  %-44s %10s %-6s %s\n' "$1" "$2" "$3" "$4"; }
verdict() { python3 - "$@" <<'PY'
import sys
# verdict VALUE OP LIMIT LABEL: "goal LABEL: met" or "not met, by N×"
v, op, lim, label = float(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
ok = v <= lim if op == "<=" else v >= lim
if ok: print(f"goal {label}: met")
else:
    by = v / lim if op == "<=" else lim / v if v else float("inf")
    print(f"goal {label}: NOT met ({by:.1f}× off)")
PY
}
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}' if b else 'inf')" "$1" "$2"; }

start_server() { # PORT PATIENTS LOG
  $BIN serve --port "$1" --patients "$2" --seed 1 --polls 0 --exit-after 7200 > "$3" 2>&1 &
  SERVERS+=($!)
  for _ in $(seq 600); do curl -s -f "http://127.0.0.1:$1/metadata" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "server on port $1 did not start: $(tail -3 "$3")"; exit 1
}
kickoff() { # BASE → status URL
  curl -s -D - -o /dev/null -H 'Accept: application/fhir+json' -H 'Prefer: respond-async' \
    "$1/Group/all-patients/\$export?_type=$TYPES" | awk 'tolower($1)=="content-location:" {print $2}' | tr -d '\r'
}
# curl: kick-off, poll to the manifest, then download every output URL, $PARALLEL at a time (download timed only).
curl_export() { # BASE DIR → prints "download_seconds rss_mb bytes files"
  local status; status=$(kickoff "$1"); mkdir -p "$2"
  for _ in $(seq 1200); do
    [ "$(curl -s -o "$2.manifest.json" -w '%{http_code}' "$status")" = 200 ] && break; sleep 0.25
  done
  jq -r '.output[].url' "$2.manifest.json" > "$2.urls"
  ( cd "$2" && /usr/bin/time -v xargs -P "$PARALLEL" -n 1 curl -s -f -O < "$2.urls" ) 2> "$2.time"
  curl -s -X DELETE "$status" > /dev/null || true
  echo "$(wall "$2.time") $(rss "$2.time") $(cat "$2"/* | wc -c) $(wc -l < "$2.urls")"
}
field() { jq -r --arg k "$1" '.[] | select(.field == $k) | .value' "$2"; }

cat <<EOF
== cohort bench: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $($BIN --version 2>/dev/null || echo cohort)
   $PATIENTS patients (all-patients), $PARALLEL parallel downloads; scale row: $([ "$BENCH_SCALE" = 0 ] && echo "skipped (BENCH_SCALE=0)" || echo "$PATIENTS_SCALE patients")
   view rows: $([ "$BENCH_VIEWS" = 0 ] && echo "skipped (BENCH_VIEWS=0)" || echo "$PATIENTS_VIEWS patients")
EOF
# Start to prompt (release, pseudo-terminal, median of 20); the README's goal: < 50 ms.
python3 - "$BIN" "$OUT/prompt-ws" > "$OUT/prompt" <<'PY'
import os, pty, sys, time, select, statistics
times = []
for _ in range(20):
    t0 = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["COHORT_HISTFILE"] = ""
        os.execv(sys.argv[1], [sys.argv[1], "--workspace", sys.argv[2]])
    buf = b""
    while b"cohort>" not in buf:
        r, _, _ = select.select([fd], [], [], 5)
        if not r: break
        try: buf += os.read(fd, 4096)
        except OSError: break
    times.append((time.perf_counter() - t0) * 1000)
    os.kill(pid, 9); os.waitpid(pid, 0); os.close(fd)
print(f"{statistics.median(times):.1f} {max(times):.1f}")
PY
read -r PROMPT_MED PROMPT_MAX < "$OUT/prompt"
row "start to prompt (pseudo-terminal, median of 20)" "$PROMPT_MED" ms "max $PROMPT_MAX ms; $(verdict "$PROMPT_MED" "<=" 50 "< 50 ms")"

BASE="http://127.0.0.1:$PORT"
start_server "$PORT" "$PATIENTS" "$OUT/serve.log"

echo "== baselines: curl ($PARALLEL in parallel, download only; median of 3)"
for i in 1 2 3; do rm -rf "$OUT/curl"; curl_export "$BASE" "$OUT/curl" > "$OUT/curl.$i"; done
read -r CURL_S CURL_RSS BYTES FILES < <(sort -n "$OUT"/curl.[123] | sed -n 2p)
row "curl download ($FILES files, $((BYTES / 1000000)) MB)" "$CURL_S" s "peak RSS $CURL_RSS MB (one curl)"

SF=${SMART_FETCH:-$(command -v smart-fetch || echo /tmp/sf-venv/bin/smart-fetch)}
SF_S=""
if [ -x "$SF" ]; then
  /usr/bin/time -v "$SF" bulk --fhir-url "$BASE" --group all-patients --type "$TYPES" --no-default-filters \
    --no-compression "$OUT/sf" > "$OUT/sf.out" 2> "$OUT/sf.time" || true
  if grep -q "Exit status: 0" "$OUT/sf.time"; then SF_S=$(wall "$OUT/sf.time"); else
    echo "  smart-fetch failed (row skipped): $(tail -5 "$OUT/sf.out" | tr '\n' ' ')"; fi
fi
if [ -n "$SF_S" ]; then
  row "smart-fetch $("$SF" --version 2>/dev/null | awk '{print $NF}') bulk (kick-off → files)" "$SF_S" s \
    "$(ratio "$SF_S" "$CURL_S")× curl, peak RSS $(rss "$OUT/sf.time") MB"
elif [ ! -x "$SF" ]; then
  echo "  smart-fetch: not installed, row skipped. To include it (never a test dependency):"
  echo "    python3 -m venv /tmp/sf-venv && /tmp/sf-venv/bin/pip install smart-fetch"
fi

echo "== cohort: full export of all-patients, then advance 7 days and an incremental"
WS="$OUT/ws"
$BIN --workspace "$WS" -c "server add b $BASE; cohort add all --server b --group all-patients --types $TYPES" > /dev/null
/usr/bin/time -v $BIN --workspace "$WS" export all --full --format json --parallel "$PARALLEL" > "$OUT/full.json" 2> "$OUT/full.time"
FULL_S=$(wall "$OUT/full.time"); FULL_RSS=$(rss "$OUT/full.time"); RES=$(field resources "$OUT/full.json")
row "cohort full export ($RES resources)" "$FULL_S" s "$(ratio "$FULL_S" "$CURL_S")× curl; $(verdict "$(ratio "$FULL_S" "$CURL_S")" "<=" 1.3 "≤ 1.3× curl")"
if [ -n "$SF_S" ]; then
  row "  vs smart-fetch" "$(ratio "$SF_S" "$FULL_S")" "×" "$(verdict "$(ratio "$SF_S" "$FULL_S")" ">=" 3 "≥ 3× faster than smart-fetch")"
fi
row "  peak RSS" "$FULL_RSS" MB "$(verdict "$FULL_RSS" "<=" 64 "≤ 64 MB")"
# Ingest: staging + commit. Staging overlaps the downloads, so the rate is taken over the span from the first
# file on disk (the first `.ndjson` mtime) to the end of the export — a lower bound on the ingest rate.
python3 - "$WS" "$OUT/full.time" "$RES" "$FULL_S" > "$OUT/ingest" <<'PY'
import glob, os, sys
ws, tlog, res, wall = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
files = glob.glob(os.path.join(ws, "all", "*", "*.ndjson"))
first, last = min(os.path.getmtime(f) for f in files), max(os.path.getmtime(f) for f in files)
end = os.path.getmtime(tlog)  # written when the export process exited
span = end - first
print(f"{res/span:.0f} {span:.3f} {end-last:.3f}")
PY
read -r INGEST SPAN TAIL < "$OUT/ingest"
# Like for like with curl's download-only figure: from the manifest (log.ndjson) to the committed snapshot.
python3 - "$WS" "$OUT/full.time" > "$OUT/aftermanifest" <<'PY2'
import glob, json, os, sys
from datetime import datetime
log = sorted(glob.glob(os.path.join(sys.argv[1], "all", "*", "log.ndjson")))[0]
ev = [json.loads(l) for l in open(log)]
t = lambda e: datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()
kick = next(t(e) for e in ev if e.get("eventId") == "kickoff")
man = next(t(e) for e in ev if e.get("eventId") == "manifest_complete")
print(f"{os.path.getmtime(sys.argv[2]) - man:.3f} {man - kick:.3f}")
PY2
read -r AFTER_MAN GEN < "$OUT/aftermanifest"
row "  manifest → committed (server generation excluded)" "$AFTER_MAN" s "$(ratio "$AFTER_MAN" "$CURL_S")× curl (kick-off → manifest took $GEN s); $(verdict "$(ratio "$AFTER_MAN" "$CURL_S")" "<=" 1.3 "≤ 1.3× curl")"
row "  ingest (first file on disk → committed)" "$INGEST" "res/s" "over $SPAN s, $TAIL s after the last file landed; $(verdict "$INGEST" ">=" 300000 "≥ 300 k/s")"

# The commit's own time, from the export's "committed snapshot #N in X s" line.
commit_s() { sed -n 's/.*committed snapshot #[0-9]* in \([0-9.]*\) s.*/\1/p' "$1" | tail -1; }
FULL_COMMIT_S=$(commit_s "$OUT/full.time")
row "  of which the commit" "$FULL_COMMIT_S" s ""

# An incremental with 1 % of the resources changed (the server's change-rate knob; the default advance changes
# ≈ 25 % in 7 days).
curl -s -f -X POST "$BASE/\$admin/advance?days=7&rate=$RATE" > "$OUT/advance.json"
/usr/bin/time -v $BIN --workspace "$WS" export all --incremental --format json --parallel "$PARALLEL" > "$OUT/inc.json" 2> "$OUT/inc.time"
INC_S=$(wall "$OUT/inc.time")
CHANGED=$(python3 -c "import json; d={r['field']:r['value'] for r in json.load(open('$OUT/inc.json'))}; print(int(d['added'])+int(d['changed'])+int(d['removed']))")
PCT=$(python3 -c "print(f'{100*$CHANGED/$RES:.1f}')")
row "cohort incremental after advance 7 days at rate $RATE ($CHANGED changed, $PCT %)" "$INC_S" s \
  "$(ratio "$INC_S" "$FULL_S")× full, peak RSS $(rss "$OUT/inc.time") MB (end to end: the server's two jobs, the \`_since\` one and the joiners', dominate; the goal is on the commit, next row)"
INC_COMMIT_S=$(commit_s "$OUT/inc.time")
row "  of which the commit" "$INC_COMMIT_S" s \
  "$(ratio "$INC_COMMIT_S" "$FULL_S")× the full export; $(verdict "$(ratio "$INC_COMMIT_S" "$FULL_S")" "<=" 0.05 "incremental commit ≤ 5 % of the full export")"

index_times() { # WS LABEL LIMIT_SUMMARY LIMIT_DIFF
  local t0 t1
  t0=$(now); $BIN --workspace "$1" summary all > /dev/null || echo "  summary failed"; t1=$(now); local s; s=$(sub "$t1" "$t0")
  row "  summary all (from the index)$2" "$s" s "$( [ -n "$3" ] && verdict "$s" "<=" "$3" "≤ $3 s at 1.3 M" || echo "goal ≤ 0.5 s applies at 1.3 M")"
  t0=$(now); $BIN --workspace "$1" diff all > /dev/null || echo "  diff failed"; t1=$(now); s=$(sub "$t1" "$t0")
  row "  diff all (from the index)$2" "$s" s "$( [ -n "$4" ] && verdict "$s" "<=" "$4" "≤ $4 s at 1.3 M" || echo "goal ≤ 1 s applies at 1.3 M")"
}
index_times "$WS" "" "" ""

echo "== summary DIR (the full export's files) vs wc -l and jq, same files, warm cache, median of 3"
dir=$(ls -d "$WS"/all/*/ | head -1)
python3 - "$BIN" "$dir" > "$OUT/sumdir" <<'PY'
import glob, statistics, subprocess, sys, time
bin, d = sys.argv[1], sys.argv[2]
files = sorted(glob.glob(d + "/*.ndjson"))
def t(cmd):
    xs = []
    for _ in range(3):
        t0 = time.perf_counter(); subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL); xs.append(time.perf_counter() - t0)
    return statistics.median(xs)
q = " ".join(f"'{f}'" for f in files)
s = t(f"'{bin}' summary '{d}'")
w = t(f"cat {q} | wc -l")
j = t(f"cat {q} | jq -c .resourceType | sort | uniq -c")
print(f"{s:.3f} {w:.3f} {j:.3f} {w/s:.2f} {j/s:.1f}")
PY
read -r SUM_S WC_S JQ_S WC_R JQ_R < "$OUT/sumdir"
row "  wc -l (baseline)" "$WC_S" s ""
row "  jq -c .resourceType | sort | uniq -c (baseline)" "$JQ_S" s ""
row "  cohort summary DIR" "$SUM_S" s "$WC_R× wc -l: $(verdict "$WC_R" ">=" 0.3 "≥ 0.3× wc -l"); $JQ_R× jq: $(verdict "$JQ_R" ">=" 20 "≥ 20× jq")"

if [ "$BENCH_SCALE" != 0 ]; then
  echo "== scale: $PATIENTS_SCALE patients, full export end to end"
  SPORT=$((PORT + 1)); SBASE="http://127.0.0.1:$SPORT"
  start_server "$SPORT" "$PATIENTS_SCALE" "$OUT/serve-scale.log"
  rm -rf "$OUT/curl" "$OUT/sf"   # disk: keep one copy of the scale files per client at a time
  read -r SCURL_S SCURL_RSS SBYTES SFILES < <(curl_export "$SBASE" "$OUT/curl-scale")
  row "scale: curl download ($SFILES files, $((SBYTES / 1000000)) MB)" "$SCURL_S" s "peak RSS $SCURL_RSS MB (one curl)"
  rm -rf "$OUT/curl-scale"
  SWS="$OUT/ws-scale"
  $BIN --workspace "$SWS" -c "server add b $SBASE; cohort add all --server b --group all-patients --types $TYPES" > /dev/null
  /usr/bin/time -v $BIN --workspace "$SWS" export all --full --format json --parallel "$PARALLEL" > "$OUT/scale.json" 2> "$OUT/scale.time"
  S_S=$(wall "$OUT/scale.time"); S_RSS=$(rss "$OUT/scale.time"); SRES=$(field resources "$OUT/scale.json")
  row "scale: cohort full export ($SRES resources)" "$S_S" s "$(ratio "$S_S" "$SCURL_S")× curl; $(verdict "$(ratio "$S_S" "$SCURL_S")" "<=" 1.3 "≤ 1.3× curl")"
  row "  peak RSS" "$S_RSS" MB "$(verdict "$S_RSS" "<=" 64 "≤ 64 MB")"
  python3 -c "print(f'{$SRES/$S_S:.0f}')" > "$OUT/srate"
  row "  end-to-end rate" "$(cat "$OUT/srate")" "res/s" ""
  # A second snapshot, so that `diff` has something to compare.
  S_COMMIT_S=$(commit_s "$OUT/scale.time")
  row "  of which the commit" "$S_COMMIT_S" s ""
  curl -s -f -X POST "$SBASE/\$admin/advance?days=7&rate=$RATE" > /dev/null
  /usr/bin/time -v $BIN --workspace "$SWS" export all --incremental --format json --parallel "$PARALLEL" > "$OUT/sinc.json" 2> "$OUT/sinc.time"
  SINC_S=$(wall "$OUT/sinc.time")
  SCHANGED=$(python3 -c "import json; d={r['field']:r['value'] for r in json.load(open('$OUT/sinc.json'))}; print(int(d['added'])+int(d['changed'])+int(d['removed']))")
  row "scale: incremental after advance 7 days at rate $RATE ($SCHANGED changed)" "$SINC_S" s "$(ratio "$SINC_S" "$S_S")× full, peak RSS $(rss "$OUT/sinc.time") MB"
  SINC_COMMIT_S=$(commit_s "$OUT/sinc.time")
  row "  of which the commit" "$SINC_COMMIT_S" s \
    "$(ratio "$SINC_COMMIT_S" "$S_S")× the full export; $(verdict "$(ratio "$SINC_COMMIT_S" "$S_S")" "<=" 0.05 "incremental commit ≤ 5 % of the full export")"
  index_times "$SWS" "" 0.5 1
fi

if [ "$BENCH_GROUP" != 0 ]; then
  # A Group of GROUP_MEMBERS members with UUID ids (as real servers name patients; 72 MB at 1 M) and one small file:
  # what reading and comparing a large member list costs, twice (first read; an unchanged second one).
  echo "== big Group: $GROUP_MEMBERS members"
  GPORT=$((PORT + 2))
  python3 Scripts/big-group-server.py "$GPORT" "$GROUP_MEMBERS" > "$OUT/serve-group.log" 2>&1 &
  SERVERS+=($!)
  for _ in $(seq 300); do curl -s -f "http://127.0.0.1:$GPORT/metadata" >/dev/null 2>&1 && break; sleep 0.2; done
  GBYTES=$(curl -s "http://127.0.0.1:$GPORT/Group/big" | wc -c)
  GWS="$OUT/ws-group"
  $BIN --workspace "$GWS" -c "server add g http://127.0.0.1:$GPORT; cohort add big --server g --group big --types Patient" > /dev/null
  for pass in first second; do
    /usr/bin/time -v $BIN --workspace "$GWS" export big --full --format json > "$OUT/group-$pass.json" 2> "$OUT/group-$pass.time"
    row "big Group ($GROUP_MEMBERS members, $((GBYTES / 1000000)) MB): $pass export" "$(wall "$OUT/group-$pass.time")" s \
      "commit $(commit_s "$OUT/group-$pass.time") s; peak RSS $(rss "$OUT/group-$pass.time") MB: $(verdict "$(rss "$OUT/group-$pass.time")" "<=" 64 "≤ 64 MB")"
  done
  grep -q "members of Group/big are unknown\|could not read Group/big" "$OUT"/group-*.time && echo "  the Group's members were NOT read (see $OUT/group-*.time)"
  rm -rf "$GWS"
fi

if [ "$BENCH_VIEWS" != 0 ]; then
  # Its own server, workspace and scratch folder; the rows join this table. The scale workspace goes first (disk).
  rm -rf "$OUT/ws-scale"
  BIN="$BIN" PATIENTS="$PATIENTS_VIEWS" OUT="$OUT/views" PORT=$((PORT + 10)) ROWS="$ROWS" bash Scripts/bench-views.sh
  rm -rf "$OUT/views/ws"
fi

echo
echo "== the table (also in $OUT/table.md)"
python3 - "$ROWS" > "$OUT/table.md" <<'PY'
import sys
print("| measurement | value | unit | ratio · goal (issue 12; view rows: issue 14) |")
print("|---|---:|---|---|")
for line in open(sys.argv[1]):
    n, v, u, note = line.rstrip("\n").split("\t")
    n, note = n.replace("|", "\\|"), note.replace("|", "\\|")
    print(f"| {n} | {v} | {u} | {note} |")
PY
cat "$OUT/table.md"
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
