#!/usr/bin/env bash
# Runs go test (or benchmarks) against two real Kafka clusters started for the run.
#
#   test/run.sh test    go test -race -shuffle=on -timeout 25m -p 1 $GOTEST_FLAGS $PKGS
#   test/run.sh bench   go test -run '^$' -bench "$BENCH" -benchmem $GOTEST_FLAGS $PKGS
#   test/run.sh chaos   go test -run '^TestChaos$' -v -timeout 90m -p 1 $GOTEST_FLAGS ./test/
#                       (make chaos sets TRIBUTARY_CHAOS_LONG=1 for the long variant)
#   test/run.sh suite   the benchmark suite, test/bench (make bench-suite; options in
#                       test/bench/README.md); its brokers get the WAN listener (KAFKA_WAN=1)
#
# After a whole test run that passed, test/fuzz.sh runs the fuzz targets of one day's
# half of the packages (FUZZ_SHARDS_SUITE, default 2) for FUZZTIME_SUITE (default 2s;
# 0 skips it).
#
# PKGS defaults to ./...; GOTEST_FLAGS adds go test flags (e.g. GOTEST_FLAGS='-run TestX -v').
# The brokers (test/harness/kafka.sh) run in a temporary directory that is removed afterwards
# unless KEEP_KAFKA_DIR=1; they are always stopped, and go test's exit code is returned.
# On failure the tail of every broker log is printed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
KAFKA_SH="$ROOT/test/harness/kafka.sh"
MODE="${1:-test}"
PKGS="${PKGS:-./...}"
GOTEST_FLAGS="${GOTEST_FLAGS:-}"
BENCH="${BENCH:-.}"

case "$MODE" in
test | bench | chaos | suite) ;;
*)
	echo "usage: test/run.sh test|bench|chaos|suite" >&2
	exit 2
	;;
esac

# The status page test (test/browser_test.go) drives Debian's chromium with playwright-core
# (test/browser); under this script a missing browser fails it instead of skipping it.
if [[ "$MODE" == test ]]; then
	if [[ ! -x /usr/bin/chromium ]]; then
		echo "run.sh: /usr/bin/chromium missing; installing Debian's chromium for the status page test" >&2
		sudo=()
		if ((EUID != 0)); then
			if ! command -v sudo >/dev/null; then
				echo "run.sh: cannot install chromium: not root and no sudo; run: apt-get install -y --no-install-recommends chromium" >&2
				exit 1
			fi
			sudo=(sudo)
		fi
		if ! { ${sudo[@]+"${sudo[@]}"} apt-get update -q &&
			${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; } >&2 ||
			[[ ! -x /usr/bin/chromium ]]; then
			echo "run.sh: installing chromium failed; the status page test needs /usr/bin/chromium" >&2
			exit 1
		fi
	fi
	if ! command -v npm >/dev/null || ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)'; then
		echo "run.sh: the status page test needs Node.js >= 20 with npm (found: $(node --version 2>/dev/null || echo none))" >&2
		exit 1
	fi
	if [[ ! -d test/browser/node_modules ]]; then
		echo "run.sh: npm ci in test/browser" >&2
		if ! (cd test/browser && npm ci --no-audit --no-fund) >&2; then
			echo "run.sh: npm ci in test/browser failed" >&2
			exit 1
		fi
	fi
fi

KAFKA_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tributary-kafka.XXXXXX")"
GOPID=""
cleanup() {
	local rc=$?
	if [[ -n "$GOPID" ]] && kill -0 "$GOPID" 2>/dev/null; then
		# The whole process group: go, the test binaries and whatever they started.
		kill -TERM -- "-$GOPID" 2>/dev/null || kill -TERM "$GOPID" 2>/dev/null || true
		wait "$GOPID" 2>/dev/null || true
	fi
	bash "$KAFKA_SH" stop "$KAFKA_DIR" || true
	if [[ "${KEEP_KAFKA_DIR:-0}" == 1 ]]; then
		echo "run.sh: broker files kept in $KAFKA_DIR" >&2
	else
		rm -rf "$KAFKA_DIR"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start=$SECONDS
if [[ "$MODE" == suite ]]; then
	export KAFKA_WAN=1
fi
if ! bash "$KAFKA_SH" start "$KAFKA_DIR"; then
	bash "$KAFKA_SH" logs "$KAFKA_DIR" 100 >&2 || true
	echo "run.sh: could not start the Kafka brokers" >&2
	exit 1
fi
echo "run.sh: brokers ready after $((SECONDS - start)) s" >&2
set -a
# shellcheck disable=SC1091
. "$KAFKA_DIR/env"
set +a

# shellcheck disable=SC2206
flags=($GOTEST_FLAGS)
# shellcheck disable=SC2206
pkgs=($PKGS)
if [[ "$MODE" == test ]]; then
	cmd=(go test -race -shuffle=on -timeout 25m -p 1 ${flags[@]+"${flags[@]}"} "${pkgs[@]}")
elif [[ "$MODE" == suite ]]; then
	# Built first, so that the suite starts its ceiling processes from a stable path.
	cmd=(bash -c 'go build -o "$0/bench" ./test/bench && exec "$0/bench"' "$KAFKA_DIR")
elif [[ "$MODE" == chaos ]]; then
	cmd=(go test -run '^TestChaos$' -v -count=1 -timeout 90m -p 1 ${flags[@]+"${flags[@]}"} ./test/)
else
	cmd=(go test -run '^$' -bench "$BENCH" -benchmem -timeout 60m -p 1 ${flags[@]+"${flags[@]}"} "${pkgs[@]}")
fi
echo "run.sh: ${cmd[*]}" >&2
rc=0
# In the background so that INT/TERM reach the traps at once (bash defers traps while a
# foreground child runs), in a process group of its own that cleanup can stop as a whole.
setsid -w "${cmd[@]}" </dev/null &
GOPID=$!
wait "$GOPID" || rc=$?
GOPID=""
if ((rc != 0)); then
	echo "run.sh: go test exited with $rc; broker logs follow" >&2
	bash "$KAFKA_SH" logs "$KAFKA_DIR" 60 >&2 || true
fi

# The short fuzz pass: the fuzz targets of one day's half of the packages
# (FUZZ_SHARDS_SUITE, default 2; 1 runs all) for FUZZTIME_SUITE (default 2s) each,
# after a whole run that passed (not when PKGS or GOTEST_FLAGS narrow it;
# FUZZTIME_SUITE=0 skips it); the whole run has replayed every target's seeds and
# corpus already. `make fuzz` runs every target for longer.
FUZZTIME_SUITE="${FUZZTIME_SUITE:-2s}"
FUZZ_SHARDS_SUITE="${FUZZ_SHARDS_SUITE:-2}"
if [[ "$MODE" == test && $rc -eq 0 && "$PKGS" == ./... && -z "$GOTEST_FLAGS" && "$FUZZTIME_SUITE" != 0 ]]; then
	echo "run.sh: short fuzz pass: FUZZTIME=$FUZZTIME_SUITE FUZZ_SHARDS=$FUZZ_SHARDS_SUITE test/fuzz.sh" >&2
	FUZZTIME="$FUZZTIME_SUITE" FUZZ_SHARDS="$FUZZ_SHARDS_SUITE" setsid -w bash "$ROOT/test/fuzz.sh" </dev/null &
	GOPID=$!
	wait "$GOPID" || rc=$?
	GOPID=""
fi
exit "$rc"
