#!/usr/bin/env bash
# Runs govulncheck on every package against a Go vulnerability database built locally from the
# golang.org/x/vulndb module (fetched through the Go module proxy), for machines that reach only the package
# registries. With network access to the public database, plain `govulncheck ./...` does the same.
set -euo pipefail
cd "$(dirname "$0")/.."
# The standard library is checked as well: analyse with the patched toolchain of go.mod's toolchain line, which
# scripts/test.sh uses too (set here for Go installations that default to GOTOOLCHAIN=local).
export GOTOOLCHAIN=${AOBA_GOTOOLCHAIN:-go1.27.3}
VULNDB_VERSION=${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}
GOVULNCHECK_VERSION=${GOVULNCHECK_VERSION:-v1.9.0}
cache=${AOBA_VULNDB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aoba-vulndb/$VULNDB_VERSION}

if [ ! -f "$cache/db/index/db.json" ]; then
  src=$(go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cp -r "$src" "$work/vulndb" && chmod -R u+w "$work/vulndb"
  (cd "$work/vulndb" && git init -q && git add -A data/osv go.mod &&
    git -c user.email=ci@localhost -c user.name=ci commit -qm snapshot &&
    go run ./cmd/gendb -repo . -out "$cache/db")
fi
GOFLAGS= go run "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION" -db "file://$cache/db" ./...
