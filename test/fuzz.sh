#!/usr/bin/env bash
# Runs every Go native fuzz target (func FuzzX(f *testing.F)) of the module, one
# target per go test invocation (go test -fuzz accepts a single target).
#
#   test/fuzz.sh                       every target for FUZZTIME (default 5m) each
#   FUZZTIME=3s test/fuzz.sh           the short pass test/run.sh test runs after go test
#   FUZZ='^FuzzApply$' test/fuzz.sh    only the targets whose name matches the regexp
#   FUZZ_PKGS=./policy test/fuzz.sh    only these packages (default ./...)
#   FUZZ_PARALLEL=1 test/fuzz.sh       fuzzing workers per target (default: GOMAXPROCS)
#
# Targets are found with `go test -list '^Fuzz'` in the packages that have a
# fuzz function. A crash stops the run with go's report; the input that
# crashed is saved under the package's testdata/fuzz/FuzzX/, where plain go
# test replays it from then on: commit it with the fix. Prints the seconds
# each target took (fuzzing plus building its instrumented test binary).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
GO="${GO:-go}"
FUZZTIME="${FUZZTIME:-5m}"
FUZZ="${FUZZ:-.}"
FUZZ_PKGS="${FUZZ_PKGS:-./...}"
FUZZ_PARALLEL="${FUZZ_PARALLEL:-}"

# Packages with a fuzz function in a test file, then the targets go lists
# there (build tags and all).
mapfile -t dirs < <(
	# shellcheck disable=SC2086
	$GO list -f '{{.Dir}}' $FUZZ_PKGS |
		while read -r d; do
			if grep -lqs '^func Fuzz[A-Za-z0-9_]*(f \*testing\.F)' "$d"/*_test.go; then
				echo "$d"
			fi
		done
)
targets=()
for d in ${dirs[@]+"${dirs[@]}"}; do
	pkg="./${d#"$ROOT"/}"
	while read -r name; do
		if [[ "$name" =~ ^Fuzz && "$name" =~ $FUZZ ]]; then
			targets+=("$pkg $name")
		fi
	done < <($GO test -list '^Fuzz' "$pkg" | grep -v '^ok ')
done
if ((${#targets[@]} == 0)); then
	echo "fuzz.sh: no fuzz target matches FUZZ='$FUZZ' in $FUZZ_PKGS" >&2
	exit 1
fi

par=()
if [[ -n "$FUZZ_PARALLEL" ]]; then
	par=(-parallel "$FUZZ_PARALLEL")
fi
echo "fuzz.sh: ${#targets[@]} targets, $FUZZTIME each" >&2
start=$SECONDS
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	t0=$SECONDS
	if ! $GO test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" ${par[@]+"${par[@]}"} "$pkg" >"${TMPDIR:-/tmp}/fuzz.$$.out" 2>&1; then
		cat "${TMPDIR:-/tmp}/fuzz.$$.out" >&2
		rm -f "${TMPDIR:-/tmp}/fuzz.$$.out"
		echo "fuzz.sh: FAIL $pkg $name (the failing input is under $pkg/testdata/fuzz/$name/ if the fuzzer found one)" >&2
		exit 1
	fi
	execs="$(grep -o 'execs: [0-9]*' "${TMPDIR:-/tmp}/fuzz.$$.out" | tail -1 || true)"
	rm -f "${TMPDIR:-/tmp}/fuzz.$$.out"
	printf 'fuzz.sh: ok %-28s %-22s %4ds %s\n' "$pkg" "$name" $((SECONDS - t0)) "$execs" >&2
done
echo "fuzz.sh: ${#targets[@]} targets passed in $((SECONDS - start))s" >&2
