#!/usr/bin/env bash
# run.sh builds the server, starts it on a free 127.0.0.1 port with a fresh
# data directory and its XMPP listener on another free port, runs the tests
# of one directory against it with Node's test runner and stops it. It exits
# non-zero when the build, the start or a test fails.
#
#   bash e2e/run.sh            the browser tests, e2e/*.test.mjs
#   bash e2e/run.sh e2e/xmpp   the XMPP tests, e2e/xmpp/*.test.mjs
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DIR="${1:-e2e}"
DIR="${DIR%/}"
NAME="$(basename "$DIR")"
if ! ls "$DIR"/*.test.mjs >/dev/null 2>&1; then
  echo "run.sh: no *.test.mjs in $DIR" >&2
  exit 2
fi

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update && apt-get install -y chromium
  else
    echo "run.sh: /usr/bin/chromium is missing; install Debian's chromium package" >&2
    exit 1
  fi
fi
if [ ! -d e2e/node_modules/playwright-core ] || [ ! -d e2e/node_modules/@xmpp/client ] || [ ! -d e2e/node_modules/converse.js ]; then
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

freeport() { node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
PORT="$(freeport)"
XMPP_PORT="$(freeport)"
URL="http://127.0.0.1:$PORT"
LOG="e2e/artifacts/server.log"
mkdir -p "$TMP/data" e2e/artifacts
if [ "$DIR" = e2e ]; then
  rm -f e2e/artifacts/*.png
else
  LOG="e2e/artifacts/server-$NAME.log"
  rm -f e2e/artifacts/"$NAME"-*.png
fi

# Every browser of the run connects from 127.0.0.1, whose standard budget each
# register, login and WebSocket upgrade spends: raise it above the default 100/min.
AOBA_RATE_STANDARD=10000 \
AOBA_ADDR="127.0.0.1:$PORT" \
AOBA_XMPP_ADDR="127.0.0.1:$XMPP_PORT" \
AOBA_DOMAIN=localhost \
AOBA_DATA_DIR="$TMP/data" \
AOBA_JWT_SECRET="$(od -An -N32 -tx1 /dev/urandom | tr -d " \n")" \
  "$TMP/aoba" >"$LOG" 2>&1 &
SERVER_PID=$!

ready=""
for _ in $(seq 1 150); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "run.sh: the server exited before it was ready; its log:" >&2
    tail -n 50 "$LOG" >&2
    exit 1
  fi
  if curl -fsS --max-time 2 "$URL/health" >/dev/null 2>&1 && (exec 3<>"/dev/tcp/127.0.0.1/$XMPP_PORT") 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.2
done
if [ -z "$ready" ]; then
  echo "run.sh: $URL/health did not answer 200, or nothing listened on XMPP port $XMPP_PORT, within 30 s; server log:" >&2
  tail -n 50 "$LOG" >&2
  exit 1
fi

status=0
AOBA_URL="$URL" AOBA_XMPP_ADDR="127.0.0.1:$XMPP_PORT" AOBA_DOMAIN=localhost \
  node --test --test-concurrency=1 --test-timeout=180000 "$DIR"/*.test.mjs || status=$?
if [ "$status" != 0 ]; then
  echo "run.sh: tests failed; last server log lines:" >&2
  tail -n 30 "$LOG" >&2
fi
exit "$status"
