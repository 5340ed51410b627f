#!/usr/bin/env bash
# Runs every check of Aoba: go vet, govulncheck (scripts/vulncheck.sh: no known vulnerability may be reachable),
# Go unit, contract and HTTP/WebSocket tests (both modes, real redis-server and an embedded FerretDB, nginx in
# front for the proxy tests), then the browser end-to-end tests in headless Debian Chromium, the JavaScript
# client tests (clients/js) and the AsyncAPI document of the WebSocket channel through the official AsyncAPI parser
# (api/asyncapi-check), the Prometheus alert rules of deploy/prometheus (promtool check and unit tests), and the
# XMPP server through clients that are not ours (e2e/xmpp: npm @xmpp/client, converse.js in chromium).
# Installs what it needs on Debian when it is missing: redis-server, nginx-light, chromium, Node.js/npm, prometheus
# (for promtool), go-sendxmpp (cmd/aoba's XMPP tests send with it; the Perl sendxmpp where go-sendxmpp is not
# packaged) and, without Docker Compose, Debian's docker-compose (cmd/aoba's TestDeployCompose validates
# docker-compose.yml with it).
set -euo pipefail
cd "$(dirname "$0")/.."
# Test with a Go whose standard library has no known advisories (1.26.8 has some, fixed in 1.26.10). go.mod's
# `toolchain go1.27.3` line already selects it under the default GOTOOLCHAIN=auto; setting it here also covers
# Go installations whose go.env defaults to GOTOOLCHAIN=local (some distribution packages). The go command
# fetches this toolchain from the Go module proxy once (about 76 MB). AOBA_GOTOOLCHAIN=local opts out.
export GOTOOLCHAIN=${AOBA_GOTOOLCHAIN:-go1.27.3}

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# redis-cli creates the test Redis Clusters; the sentinels are redis-server --sentinel.
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
{ docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; } || need+=(docker-compose)
sender=""
command -v go-sendxmpp >/dev/null 2>&1 || command -v sendxmpp >/dev/null 2>&1 || sender=missing
if [ ${#need[@]} -gt 0 ] || [ -n "$sender" ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  if [ -n "$sender" ]; then
    if apt-cache show go-sendxmpp >/dev/null 2>&1; then need+=(go-sendxmpp); else need+=(sendxmpp); fi
  fi
  echo "installing: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

echo "== $(go version)"
echo "== go vet"
go vet ./...
echo "== Prometheus alert rules (promtool)"
promtool check rules deploy/prometheus/aoba-alerts.yml
(cd deploy/prometheus && promtool test rules aoba-alerts.test.yml)
echo "== govulncheck"
./scripts/vulncheck.sh
echo "== go test -race"
go test -race -count=1 -timeout 20m ./...
echo "== fuzz (15 s per target; a crash leaves its input under the package's testdata/fuzz)"
# -fuzz matches a single target, so one invocation each.
go test -run '^$' -fuzz '^FuzzRequestBody$' -fuzztime 15s ./api/
go test -run '^$' -fuzz '^FuzzClientFrame$' -fuzztime 15s ./realtime/
go test -run '^$' -fuzz '^FuzzDecodeEnvelope$' -fuzztime 15s ./hub/
go test -run '^$' -fuzz '^FuzzEnvelopeRoundTrip$' -fuzztime 15s ./hub/
go test -run '^$' -fuzz '^FuzzReadElement$' -fuzztime 15s ./xmpp/
echo "== browser end-to-end tests"
bash e2e/run.sh
echo "== XMPP end-to-end tests (npm @xmpp/client over TCP+STARTTLS and WebSocket, converse.js in chromium)"
timeout 900 bash e2e/run.sh e2e/xmpp
echo "== JavaScript client tests (clients/js, against the real server)"
(cd clients/js && npm ci --no-audit --no-fund && npm test)
echo "== AsyncAPI document (@asyncapi/parser)"
(cd api/asyncapi-check && npm ci --no-audit --no-fund && node check.mjs)
