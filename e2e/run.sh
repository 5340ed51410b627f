#!/usr/bin/env bash
# run.sh builds the server, starts it on a free 127.0.0.1 port with a fresh
# data directory, runs the browser tests against it with Node's test runner
# and stops it. It exits non-zero when the build, the start or a test fails.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update && apt-get install -y chromium
  else
    echo "run.sh: /usr/bin/chromium is missing; install Debian's chromium package" >&2
    exit 1
  fi
fi
if [ ! -d e2e/node_modules/playwright-core ]; then
  (cd e2e && npm ci --no-audit --no-fund)
fi

TMP="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

go build -o "$TMP/aoba" ./cmd/aoba

PORT="$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
URL="http://127.0.0.1:$PORT"
mkdir -p "$TMP/data" e2e/artifacts
rm -f e2e/artifacts/*.png

# Every browser of the run connects from 127.0.0.1, whose standard budget each
# register, login and WebSocket upgrade spends: raise it above the default 100/min.
AOBA_RATE_STANDARD=10000 \
AOBA_ADDR="127.0.0.1:$PORT" \
AOBA_DATA_DIR="$TMP/data" \
AOBA_JWT_SECRET="$(od -An -N32 -tx1 /dev/urandom | tr -d " \n")" \
  "$TMP/aoba" >"e2e/artifacts/server.log" 2>&1 &
SERVER_PID=$!

ready=""
for _ in $(seq 1 150); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "run.sh: the server exited before it was ready; its log:" >&2
    tail -n 50 e2e/artifacts/server.log >&2
    exit 1
  fi
  if curl -fsS --max-time 2 "$URL/health" >/dev/null 2>&1; then
    ready=1
    break
  fi
  sleep 0.2
done
if [ -z "$ready" ]; then
  echo "run.sh: $URL/health did not answer 200 within 30 s; server log:" >&2
  tail -n 50 e2e/artifacts/server.log >&2
  exit 1
fi

status=0
AOBA_URL="$URL" node --test --test-concurrency=1 --test-timeout=180000 e2e/*.test.mjs || status=$?
if [ "$status" != 0 ]; then
  echo "run.sh: tests failed; last server log lines:" >&2
  tail -n 30 e2e/artifacts/server.log >&2
fi
exit "$status"
