#!/usr/bin/env bash
# Runs every Go native fuzz target (func FuzzX(f *testing.F)) of the module, one
# target per run (go fuzzes a single target at a time).
#
#   test/fuzz.sh                       every target for FUZZTIME (default 5m) each
#   FUZZTIME=2s test/fuzz.sh           the short pass test/run.sh test runs after go test
#   FUZZ='^FuzzApply$' test/fuzz.sh    only the targets whose name matches the regexp
#   FUZZ_PKGS=./policy test/fuzz.sh    only these packages (default ./...)
#   FUZZ_PARALLEL=1 test/fuzz.sh       fuzzing workers per target (default: GOMAXPROCS)
#   FUZZ_SHARDS=3 test/fuzz.sh         one third of the packages: those whose index modulo 3
#                                      is FUZZ_SHARD (default: the day of the year modulo 3),
#                                      so a short daily pass covers every package in 3 days
#
# Each package with a fuzz function is built once, instrumented for fuzzing
# (go test -c -fuzz), and its targets are listed by the binary itself (what
# `go test -list '^Fuzz'` prints) and run one after the other, as
# `go test -run '^$' -fuzz '^FuzzX$' -fuzztime $FUZZTIME` runs them but without
# relinking per target, with go's corpus cache (`$(go env GOCACHE)/fuzz`). A
# crash stops the run with go's report; the input that crashed is saved under
# the package's testdata/fuzz/FuzzX/, where plain go test replays it from then
# on: commit it with the fix. Prints the seconds each target took.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
GO="${GO:-go}"
FUZZTIME="${FUZZTIME:-5m}"
FUZZ="${FUZZ:-.}"
FUZZ_PKGS="${FUZZ_PKGS:-./...}"
FUZZ_PARALLEL="${FUZZ_PARALLEL:-}"
# A fuzz target that hangs on an input fails the run after this long.
FUZZ_TIMEOUT="${FUZZ_TIMEOUT:-30m}"

BIN="$(mktemp -d "${TMPDIR:-/tmp}/tributary-fuzz.XXXXXX")"
trap 'rm -rf "$BIN"' EXIT
CACHE="$($GO env GOCACHE)/fuzz"

# The packages with a fuzz function in a test file: import path and directory.
mapfile -t pkgs < <(
	# shellcheck disable=SC2086
	$GO list -f '{{.ImportPath}} {{.Dir}}' $FUZZ_PKGS |
		while read -r path dir; do
			if grep -qs '^func Fuzz[A-Za-z0-9_]*(f \*testing\.F)' "$dir"/*_test.go; then
				echo "$path $dir"
			fi
		done
)

# Sharding by package: each package is built once for its targets, and building
# dominates a short pass.
FUZZ_SHARDS="${FUZZ_SHARDS:-1}"
FUZZ_SHARD="${FUZZ_SHARD:-$((10#$(date -u +%j) % FUZZ_SHARDS))}"
if ((FUZZ_SHARDS > 1)); then
	kept=()
	for i in "${!pkgs[@]}"; do
		if ((i % FUZZ_SHARDS == FUZZ_SHARD)); then
			kept+=("${pkgs[$i]}")
		fi
	done
	echo "fuzz.sh: shard $FUZZ_SHARD of $FUZZ_SHARDS: ${#kept[@]} of ${#pkgs[@]} packages" >&2
	pkgs=(${kept[@]+"${kept[@]}"})
fi

par=()
if [[ -n "$FUZZ_PARALLEL" ]]; then
	par=(-test.parallel "$FUZZ_PARALLEL")
fi
start=$SECONDS
n=0
for p in ${pkgs[@]+"${pkgs[@]}"}; do
	read -r path dir <<<"$p"
	rel="./${dir#"$ROOT"/}"
	bin="$BIN/$(basename "$dir").test"
	t0=$SECONDS
	$GO test -c -fuzz '^Fuzz' -o "$bin" "$rel"
	mapfile -t names < <(cd "$dir" && "$bin" -test.list '^Fuzz' | grep -E '^Fuzz' | grep -E -- "$FUZZ" || true)
	if ((${#names[@]} == 0)); then
		continue
	fi
	echo "fuzz.sh: $rel built in $((SECONDS - t0))s: ${names[*]}" >&2
	for name in "${names[@]}"; do
		t0=$SECONDS
		out="$BIN/$name.out"
		ok=1
		for attempt in 1 2; do
			if (cd "$dir" && "$bin" -test.run '^$' -test.fuzz "^${name}\$" -test.fuzztime "$FUZZTIME" \
				-test.fuzzcachedir "$CACHE/$path" -test.timeout "$FUZZ_TIMEOUT" ${par[@]+"${par[@]}"}) >"$out" 2>&1; then
				ok=1
				break
			fi
			ok=0
			# Go's fuzzing engine can end a short run with a bare "context
			# deadline exceeded" when the time runs out while a worker is
			# between inputs (no input failed, none is written). Such a run is
			# tried once more; a failing input never is.
			if ((attempt == 2)) || grep -q 'Failing input written' "$out" || ! grep -q '^    context deadline exceeded$' "$out"; then
				break
			fi
			echo "fuzz.sh: $rel $name: the fuzzing engine stopped with 'context deadline exceeded' and no failing input; once more" >&2
		done
		if ((ok == 0)); then
			cat "$out" >&2
			echo "fuzz.sh: FAIL $rel $name; replay with: go test -run '$name' $rel (the failing input is under $rel/testdata/fuzz/$name/ when the fuzzer found one)" >&2
			exit 1
		fi
		execs="$(grep -o 'execs: [0-9]*' "$out" | tail -1 || true)"
		printf 'fuzz.sh: ok %-24s %-24s %4ds %s\n' "$rel" "$name" $((SECONDS - t0)) "$execs" >&2
		n=$((n + 1))
	done
done
if ((n == 0)); then
	echo "fuzz.sh: no fuzz target matches FUZZ='$FUZZ' in $FUZZ_PKGS" >&2
	exit 1
fi
echo "fuzz.sh: $n targets passed, $FUZZTIME each, in $((SECONDS - start))s" >&2
