#!/usr/bin/env bash
# load/bench/run.sh — the benchmark figures of load/README.md, on one machine.
#
#   load/bench/run.sh embedded   rush 2,000 users / 1,000 seats on the embedded system (3 runs)
#   load/bench/run.sh stack      the same on the local real stack (3 runs, one stack)
#   load/bench/run.sh holds      hold throughput vs. users (embedded and stack)
#   load/bench/run.sh ceiling    the harness vs wrk on the same pages of `ticketing serve --embedded`
#   load/bench/run.sh seatmap    wrk on a 10,000-seat map: /health, full map, compact status; cache on vs off
#   load/bench/run.sh sse        10,000 seat streams on one event: change -> delivery, memory per stream
#   load/bench/run.sh onsale-ceiling [embedded|stack]
#                                onsale at rising constant arrival rates, then wrk on a
#                                10,000-seat map of the same target: the highest rate that
#                                passes the gate and the bare read's rate, side by side
#   load/bench/run.sh purchase   placed -> CONFIRMED on the local real stack (16 buyers),
#                                with each order's steps read back from the databases
#   load/bench/run.sh purchase-confirm
#                                the same, saga.confirm_over_http off and on, alternating
#                                on a fresh stack each (3 rounds)
#   load/bench/run.sh purchase-ab <earlier ticketing binary>
#                                the same, an earlier build against this one (polling),
#                                and this one with ?waitMs= reads, alternating (3 rounds)
#
# Everything listens on loopback; every run is bounded by --run-time.
# Results: target/bench/<what>/...; the lines worth quoting are printed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
OUT="$ROOT/target/bench"
mkdir -p "$OUT"
LOAD="$ROOT/target/release/ticketing-load"
BIN="$ROOT/target/release/ticketing"
cargo build --release --locked --quiet -p ticketing-load -p ticketing-cli

stack_up() {
  export TICKETING_STACK_DIR="$OUT/stack"
  TICKETING_BIN="$BIN" ci/stack up >/dev/null
  # shellcheck disable=SC1091
  . "$TICKETING_STACK_DIR/stack.env"
  # ticketing-load --host reads the services' credential from here, and
  # signs its customers' tokens with the stack's key (without it every
  # hold and order is a 401).
  export TICKETING_SERVICE_TOKEN="$TICKETING_STACK_SERVICE_TOKEN"
  export TICKETING_AUTH__JWT_SECRET="$TICKETING_STACK_JWT_SECRET"
  trap 'ci/stack down >/dev/null 2>&1 || true' EXIT
}

case "${1:-}" in
  embedded)
    for i in 1 2 3; do
      "$LOAD" --scenario rush --quiet --out "$OUT/rush-embedded-$i" | grep -E "^POST /api/reservations|^rush:|^throughput|SLO gate" || true
    done ;;
  stack)
    stack_up
    for i in 1 2 3; do
      "$LOAD" --host "$TICKETING_STACK_URL" --internal-url "$TICKETING_STACK_INTERNAL_URL" \
        --scenario rush --quiet --out "$OUT/rush-stack-$i" | grep -E "^POST /api/reservations|^rush:|^throughput|SLO gate" || true
    done ;;
  holds)
    for u in 4 8 16 32 64; do
      echo "embedded, $u users:"
      "$LOAD" --scenario holds --seats 20000 --users "$u" --run-time 10s --ramp 1s --quiet \
        --out "$OUT/holds-embedded-$u" | grep -E "^POST /api/reservations|^throughput" || true
    done
    stack_up
    for u in 4 8 16 32 64; do
      echo "stack, $u users:"
      "$LOAD" --host "$TICKETING_STACK_URL" --internal-url "$TICKETING_STACK_INTERNAL_URL" \
        --scenario holds --seats 20000 --users "$u" --run-time 10s --ramp 1s --quiet \
        --out "$OUT/holds-stack-$u" | grep -E "^POST /api/reservations|^throughput" || true
    done ;;
  ceiling)
    command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$BIN" serve --embedded --port "$port" >"$OUT/serve.log" 2>&1 &
    pid=$!
    trap 'kill $pid 2>/dev/null || true' EXIT
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
    internal=$(sed -n 's/.*internal routes.* on \(http:[^ ]*\).*/\1/p' "$OUT/serve.log")
    for i in 1 2 3; do
      echo "harness, browse, 32 users, no think time:"
      "$LOAD" --host "http://127.0.0.1:$port" --internal-url "$internal" --run-id "ceiling-$i" \
        --scenario browse --think-ms-max 0 --users 32 --run-time 10s --ramp 1s --quiet \
        --out "$OUT/ceiling-harness-$i" | grep -E "^all|^throughput" || true
      echo "wrk, the same three pages, 32 connections:"
      EVENT="ceiling-$i-browse" wrk -t2 -c32 -d10s --latency -s load/bench/browse.lua "http://127.0.0.1:$port" \
        | grep -E "Requests/sec|50%|99%" || true
    done ;;
  seatmap)
    # A 10,000-seat map read by wrk: /health, the full map, the compact
    # status, on one server with the seat-map cache and one without (the
    # same binary, catalog.seat_map_cache = false), side by side.
    command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
    serve_seatmap() { # $1 = name, $2 = cache on/off
      local port
      port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
      TICKETING_CATALOG__SEAT_MAP_CACHE="$2" "$BIN" serve --embedded --port "$port" >"$OUT/serve-$1.log" 2>&1 &
      echo $! >"$OUT/serve-$1.pid"
      for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
      local internal
      internal=$(sed -n 's/.*internal routes.* on \(http:[^ ]*\).*/\1/p' "$OUT/serve-$1.log")
      curl -fs -X POST "$internal/internal/events" -H 'content-type: application/json' \
        -d '{"eventId":"seatmap","title":"Seat map bench","startsAt":"2027-01-01T20:00:00Z","rows":100,"cols":100}' >/dev/null
      echo "http://127.0.0.1:$port"
    }
    on=$(serve_seatmap cache-on true)
    off=$(serve_seatmap cache-off false)
    trap 'kill $(cat "$OUT"/serve-cache-*.pid) 2>/dev/null || true' EXIT
    for i in 1 2 3; do
      for path in /health /api/events/seatmap/seats/status /api/events/seatmap/seats; do
        for which in on off; do
          url=$([ "$which" = on ] && echo "$on" || echo "$off")
          printf 'round %s cache %-3s %-40s ' "$i" "$which" "$path"
          wrk -t2 -c32 -d5s --latency "$url$path" | awk '/Requests\/sec/ {print $2 " req/s"}'
        done
      done
    done ;;
  sse)
    # 10,000 seat streams on one event of `ticketing serve --embedded`:
    # change -> delivery percentiles and memory per open stream.
    cargo build --release --locked --quiet -p ticketing-cli --example bench_sse
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    ulimit -n "$(ulimit -Hn)"
    # Room for 10,000 streams plus the bench's own connections (default cap: 10,000).
    TICKETING_HTTP__MAX_CONNECTIONS=12000 "$BIN" serve --embedded --port "$port" >"$OUT/serve-sse.log" 2>&1 &
    pid=$!
    trap 'kill $pid 2>/dev/null || true' EXIT
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
    internal=$(sed -n 's/.*internal routes.* on \(http:[^ ]*\).*/\1/p' "$OUT/serve-sse.log")
    BENCH_URL="http://127.0.0.1:$port" BENCH_INTERNAL_URL="$internal" "$ROOT/target/release/examples/bench_sse" ;;
  onsale-ceiling)
    command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
    target="${2:-embedded}"
    case "$target" in
      embedded)
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        "$BIN" serve --embedded --port "$port" >"$OUT/serve-onsale.log" 2>&1 &
        pid=$!
        trap 'kill $pid 2>/dev/null || true' EXIT
        for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
        host="http://127.0.0.1:$port"
        internal=$(sed -n 's/.*internal routes.* on \(http:[^ ]*\).*/\1/p' "$OUT/serve-onsale.log")
        rates="${RATES:-600 800 1000 1200 1400}" ;;
      stack)
        stack_up
        host="$TICKETING_STACK_URL"; internal="$TICKETING_STACK_INTERNAL_URL"
        rates="${RATES:-100 200 300 400 500}" ;;
      *) echo "usage: load/bench/run.sh onsale-ceiling [embedded|stack]" >&2; exit 2 ;;
    esac
    # 10 s of arrivals at each rate, four people per seat.
    for rate in $rates; do
      arrivals=$((rate * 10)); seats=$((arrivals / 4))
      echo "onsale on $target at $rate arrivals/s ($arrivals for $seats seats over 10 s):"
      "$LOAD" --host "$host" --internal-url "$internal" --run-id "onsale-$target-$rate-$$" \
        --scenario onsale --arrivals "$arrivals" --seats "$seats" --arrival-window 10s --quiet \
        --out "$OUT/onsale-$target-$rate" | grep -E "^open:|^onsale:|SLO gate" || true
    done
    # The bare read of the same target: a 10,000-seat map, cached (idle event).
    curl -fs -X POST "$internal/internal/events" -H 'content-type: application/json' \
      -H "x-service-token: ${TICKETING_SERVICE_TOKEN:-}" \
      -d '{"eventId":"bench-seatmap-'$$'","title":"Seat map bench","startsAt":"2027-01-01T20:00:00Z","rows":100,"cols":100}' >/dev/null
    for path in /health "/api/events/bench-seatmap-$$/seats"; do
      printf 'wrk -t2 -c32 -d5s %-40s ' "$path"
      wrk -t2 -c32 -d5s --latency "$host$path" | awk '/Requests\/sec/ {r=$2} / 99%/ {p=$2} END {print r " req/s, p99 " p}'
    done ;;
  purchase)
    cargo build --release --locked --quiet -p ticketing-cli --example bench_stack
    stack_up
    BENCH_ONLY=purchases BENCH_POLL_MS="${BENCH_POLL_MS:-20}" "$ROOT/target/release/examples/bench_stack" ;;
  purchase-confirm)
    # The same binary, saga.confirm_over_http off and on, alternating on a
    # fresh stack each, three rounds: the before/after of the HTTP confirm.
    cargo build --release --locked --quiet -p ticketing-cli --example bench_stack
    for round in 1 2 3; do
      for http in false true; do
        echo "round $round, saga.confirm_over_http=$http:"
        env_file="$OUT/confirm-$http.env"
        echo "TICKETING_SAGA__CONFIRM_OVER_HTTP=$http" >"$env_file"
        (
          export TICKETING_STACK_ENV="$env_file"
          stack_up
          BENCH_ONLY=purchases BENCH_POLL_MS="${BENCH_POLL_MS:-20}" "$ROOT/target/release/examples/bench_stack"
        )
      done
    done ;;
  purchase-ab)
    # The purchase bench, an earlier build's `ticketing` ($2: a copy of
    # target/release/ticketing built at an earlier commit) against this
    # build, alternating on a fresh stack each, three rounds: the earlier
    # build with buyers polling every 20 ms, this build polling the same
    # way, and this build with buyers reading once with ?waitMs=.
    before="${2:-}"
    [ -n "$before" ] && [ -x "$before" ] \
      || { echo "usage: load/bench/run.sh purchase-ab <ticketing binary of an earlier build>" >&2; exit 2; }
    cargo build --release --locked --quiet -p ticketing-cli --example bench_stack
    this="$BIN"
    for round in 1 2 3; do
      for run in earlier-polling this-polling this-waiting; do
        echo "round $round, $run:"
        (
          case "$run" in earlier-*) BIN="$before" ;; *) BIN="$this" ;; esac
          case "$run" in *-waiting) wait_ms=5000 ;; *) wait_ms=0 ;; esac
          stack_up
          BENCH_ONLY=purchases BENCH_POLL_MS=20 BENCH_WAIT_MS="$wait_ms" \
            "$ROOT/target/release/examples/bench_stack"
        )
      done
    done ;;
  *) echo "usage: load/bench/run.sh embedded|stack|holds|ceiling|seatmap|sse|onsale-ceiling|purchase|purchase-confirm|purchase-ab" >&2; exit 2 ;;
esac
