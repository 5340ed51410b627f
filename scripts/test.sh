#!/usr/bin/env bash
# Runs every test of Aoba: Go unit, contract and HTTP/WebSocket tests (both modes, real redis-server and an
# embedded FerretDB), then the browser end-to-end tests in headless Debian Chromium.
# Installs what it needs on Debian when it is missing: redis-server, chromium, Node.js/npm.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

echo "== go vet"
go vet ./...
echo "== go test -race"
go test -race -count=1 -timeout 20m ./...
echo "== browser end-to-end tests"
bash e2e/run.sh
