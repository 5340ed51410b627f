#!/bin/sh
# run-benchmarks.sh reproduces the figures of BENCHMARKS.md: it builds the
# server and the tool, starts the servers (embedded store; the memory hub for
# one pod, a private redis-server for two pods) with high rate limits and
# cheap argon2 set through their environment, and runs each measurement.
# Each measurement runs $REPS times (default 3); every run's JSON goes to
# $OUT (default /tmp/aoba-bench-results)/<name>-<i>.json. Usage, from the
# repository root: sh cmd/aoba-bench/run-benchmarks.sh [idle|idle-max|fanout|direct|fanout-redis|rest|fanout-rest|all]
# ("direct" also runs the two-pod fan-out; FANOUT_RATE sets the fan-out's
# offered rate, default 200 msg/s; "fanout-rest", not part of "all", sends
# 12,000 group messages through REST as fast as 8 publishers with 4 requests
# in flight each can, one pod then two pods on Redis, for deliveries per
# server CPU-second). "idle-max" (not part of all) holds IDLE_N (default
# 100,000) sockets on one pod, a fresh one per run with its data on tmpfs and
# the cheapest argon2, pinging every PING_INTERVAL (25s): both processes need
# an open file limit above IDLE_N + 320 (ulimit -n; the tool says when it is
# too low). SERVER=path runs that server binary instead of building this
# tree's (to compare two commits). medians.py OUT prints each figure's median.
# "xmpp-idle" and "xmpp-latency" (not part of all) measure XMPP sessions with
# the JSON socket's figures taken the same way in the same sitting:
# xmpp-idle holds XMPP_IDLE_N (default "1000 5000") sessions, then as many
# JSON sockets, each on a fresh pod with its data on tmpfs, alternating, for
# HOLD (default 60s); xmpp-latency sends 100 msg/s for 20 s over 50 pairs
# XMPP -> JSON socket, JSON socket -> XMPP and JSON -> JSON, on one pod, then
# on two pods through Redis (a certificate made with openssl, as two pods
# need the same one). BENCH=path runs that aoba-bench binary instead of
# building one.
set -eu
OUT=${OUT:-/tmp/aoba-bench-results}
WHAT=${1:-all}
REPS=${REPS:-3}
mkdir -p "$OUT"
SERVER=${SERVER:-}
if [ -z "$SERVER" ]; then
	go build -o /tmp/aoba ./cmd/aoba
	SERVER=/tmp/aoba
fi
BENCH=${BENCH:-}
if [ -z "$BENCH" ]; then
	go build -o /tmp/aoba-bench ./cmd/aoba-bench
	BENCH=/tmp/aoba-bench
fi
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

# start_pod PORT DATA_DIR REDIS_URL LOG (ARGON2_KIB, PING_INTERVAL from the environment)
start_pod() {
	env AOBA_ADDR=127.0.0.1:$1 AOBA_DATA_DIR=$2 AOBA_REDIS_URL=$3 AOBA_MONGO_URI= \
		AOBA_JWT_SECRET=bench-secret-0123456789abcdef0123456789 \
		AOBA_RATE_STANDARD=100000000 AOBA_RATE_BATCH=100000000 AOBA_RATE_SEARCH=100000000 \
		AOBA_ARGON2_MEMORY_KIB=${ARGON2_KIB:-1024} AOBA_ARGON2_ITERATIONS=1 AOBA_LOG_LEVEL=warn \
		AOBA_PING_INTERVAL=${PING_INTERVAL:-25s} \
		AOBA_XMPP_ADDR=${XMPP_ADDR:-} AOBA_DOMAIN=aoba.chat AOBA_TLS_CERT=${TLS_CERT:-} AOBA_TLS_KEY=${TLS_KEY:-} \
		"$SERVER" >"$4" 2>&1 &
	PIDS="$PIDS $!"
	i=0
	until curl -fs "http://127.0.0.1:$1/health" >/dev/null; do
		i=$((i + 1)); [ $i -lt 100 ] || { echo "pod on :$1 did not start"; cat "$4"; exit 1; }
		sleep 0.1
	done
}
stop_all() { cleanup; PIDS=""; }

one_pod() { rm -rf "$OUT/data1"; start_pod 18080 "$OUT/data1" "" "$OUT/pod1.log"; }

# bench NAME ARGS...: runs aoba-bench ARGS -json $REPS times.
bench() {
	name=$1; shift
	i=1
	while [ $i -le "$REPS" ]; do
		echo "== $name run $i: aoba-bench $*" >&2
		"$BENCH" "$@" -json -progress 0 >"$OUT/$name-$i.json"
		i=$((i + 1))
	done
}

if [ "$WHAT" = all ] || [ "$WHAT" = idle ]; then
	one_pod
	bench idle idle -addr http://127.0.0.1:18080 -n "${IDLE_N:-10000}" -duration 10s -sources 8 \
		-provision-concurrency 32 -dial-concurrency 64
	stop_all
fi
if [ "$WHAT" = idle-max ]; then
	# A fresh pod per run; users are provisioned with 8 KiB argon2 into a
	# store on tmpfs (the store's cost is not what this measures). The hold
	# (60 s) covers two ping intervals of 25 s.
	r=1
	while [ $r -le "$REPS" ]; do
		rm -rf /dev/shm/aoba-idle-max
		ARGON2_KIB=8 start_pod 18080 /dev/shm/aoba-idle-max "" "$OUT/pod-idle-max-$r.log"
		echo "== idle-max run $r" >&2
		"$BENCH" idle -addr http://127.0.0.1:18080 -n "${IDLE_N:-100000}" -duration 60s \
			-provision-concurrency 64 -dial-concurrency 64 -json -progress 0 >"$OUT/idle-max-$r.json"
		stop_all
		r=$((r + 1))
	done
	rm -rf /dev/shm/aoba-idle-max
fi
if [ "$WHAT" = all ] || [ "$WHAT" = fanout ]; then
	one_pod
	bench fanout fanout -addr http://127.0.0.1:18080 -members 500 -publishers 5 \
		-rate "${FANOUT_RATE:-200}" -duration 20s -window 64 -baseline
	stop_all
fi
if [ "$WHAT" = all ] || [ "$WHAT" = direct ] || [ "$WHAT" = fanout-redis ]; then
	RPORT=${REDIS_PORT:-16379}
	redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
		>"$OUT/redis.log" 2>&1 &
	PIDS="$PIDS $!"
	sleep 0.5
	rm -rf "$OUT/shared"
	# Both pods share one embedded store (SQLite in WAL mode, cross-process
	# locking) and talk through Redis.
	start_pod 18081 "$OUT/shared" "redis://127.0.0.1:$RPORT/0" "$OUT/pod-a.log"
	start_pod 18082 "$OUT/shared" "redis://127.0.0.1:$RPORT/0" "$OUT/pod-b.log"
	[ "$WHAT" = fanout-redis ] || bench direct direct -addr http://127.0.0.1:18081,http://127.0.0.1:18082 -pairs 50 -rate 1000 -duration 30s
	bench fanout-redis fanout -addr http://127.0.0.1:18081,http://127.0.0.1:18082 -members 500 -publishers 5 \
		-rate "${FANOUT_RATE:-200}" -duration 20s -window 64 -baseline
	stop_all
fi
if [ "$WHAT" = fanout-rest ]; then
	one_pod
	bench fanout-rest fanout -addr http://127.0.0.1:18080 -members 500 -publishers 8 -via rest -count 12000 \
		-window 4 -duration 120s
	stop_all
	RPORT=${REDIS_PORT:-16379}
	redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
		>"$OUT/redis.log" 2>&1 &
	PIDS="$PIDS $!"
	sleep 0.5
	rm -rf "$OUT/shared"
	start_pod 18081 "$OUT/shared" "redis://127.0.0.1:$RPORT/0" "$OUT/pod-a.log"
	start_pod 18082 "$OUT/shared" "redis://127.0.0.1:$RPORT/0" "$OUT/pod-b.log"
	bench fanout-rest-redis fanout -addr http://127.0.0.1:18081,http://127.0.0.1:18082 -members 500 -publishers 8 \
		-via rest -count 12000 -window 4 -duration 120s
	stop_all
fi
if [ "$WHAT" = all ] || [ "$WHAT" = rest ]; then
	one_pod
	bench rest rest -addr http://127.0.0.1:18080 -users 100 -concurrency 32 -duration 20s
	for op in me metadata presence messages; do
		REPS=1 bench "rest-$op" rest -addr http://127.0.0.1:18080 -users 100 -concurrency 32 -duration 8s -ops $op
	done
	stop_all
fi
# The XMPP targets' ports: HTTP_PORT (and the next two for two pods),
# XMPP_PORT (likewise).
HP=${HTTP_PORT:-18080}
XP=${XMPP_PORT:-15222}
if [ "$WHAT" = xmpp-idle ]; then
	# A fresh pod per run, data on tmpfs, cheapest argon2 (the store and
	# provisioning are not what this measures); XMPP and JSON alternate.
	for n in ${XMPP_IDLE_N:-1000 5000}; do
		r=1
		while [ $r -le "$REPS" ]; do
			for kind in xmpp-idle idle; do
				rm -rf /dev/shm/aoba-xmpp-idle
				XMPP_ADDR=127.0.0.1:$XP ARGON2_KIB=8 start_pod $HP /dev/shm/aoba-xmpp-idle "" "$OUT/pod-$kind-$n-$r.log"
				echo "== $kind n=$n run $r" >&2
				xargs=""
				[ $kind = idle ] || xargs="-xmpp-addr 127.0.0.1:$XP -domain aoba.chat"
				"$BENCH" $kind -addr http://127.0.0.1:$HP $xargs -n "$n" \
					-duration "${HOLD:-60s}" -provision-concurrency 32 -dial-concurrency 32 -json -progress 0 \
					>"$OUT/$kind-$n-$r.json"
				stop_all
			done
			r=$((r + 1))
		done
	done
	rm -rf /dev/shm/aoba-xmpp-idle
fi
if [ "$WHAT" = xmpp-latency ]; then
	rm -rf "$OUT/data1"
	XMPP_ADDR=127.0.0.1:$XP start_pod $HP "$OUT/data1" "" "$OUT/pod1.log"
	bench xmpp-latency xmpp-latency -addr http://127.0.0.1:$HP -xmpp-addr 127.0.0.1:$XP -domain aoba.chat \
		-pairs 50 -rate 100 -duration 20s
	stop_all
	RPORT=${REDIS_PORT:-16379}
	redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
		>"$OUT/redis.log" 2>&1 &
	PIDS="$PIDS $!"
	sleep 0.5
	rm -rf "$OUT/shared"
	mkdir -p "$OUT/shared"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=aoba.chat \
		-addext subjectAltName=DNS:aoba.chat,DNS:conference.aoba.chat \
		-keyout "$OUT/xmpp-key.pem" -out "$OUT/xmpp-cert.pem" 2>/dev/null
	export TLS_CERT="$OUT/xmpp-cert.pem" TLS_KEY="$OUT/xmpp-key.pem"
	XMPP_ADDR=127.0.0.1:$((XP + 1)) start_pod $((HP + 1)) "$OUT/shared" "redis://127.0.0.1:$RPORT/0" "$OUT/pod-a.log"
	XMPP_ADDR=127.0.0.1:$((XP + 2)) start_pod $((HP + 2)) "$OUT/shared" "redis://127.0.0.1:$RPORT/0" "$OUT/pod-b.log"
	bench xmpp-latency-redis xmpp-latency -addr http://127.0.0.1:$((HP + 1)),http://127.0.0.1:$((HP + 2)) \
		-xmpp-addr 127.0.0.1:$((XP + 1)),127.0.0.1:$((XP + 2)) -domain aoba.chat -pairs 50 -rate 100 -duration 20s
	stop_all
fi
