#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
#
# Run every libshmk test program; the last line printed is exactly
# "N passed, N failed", and the exit status is nonzero when a test failed.
# Each test program counts one for each variant it runs in:
#
#   plain     built with fault injection (build/test-plain)
#   asan      built with ASan and UBSan (build/test-asan)
#   valgrind  the plain build under valgrind memcheck, at a smaller scale
#
# Environment:
#   SHMK_BACKEND         kernel or posix (memfd, its old name, works too);
#                        unset: kernel when /dev/shmk exists
#   SHMK_TEST_VARIANTS   default "plain asan valgrind" (valgrind if installed);
#                        separated by spaces or commas
#   SHMK_TEST_ONLY       space-separated test names (t_model ...) to run
#   SHMK_TEST_TIMEOUT    seconds per test, default 600
#   SHMK_TEST_NO_BUILD   set: do not run "make test-build" first
#   SHMK_TEST_VERBOSE    set: show the output of passing tests too
#
# With the kernel backend a test also fails when the kernel log gains a
# BUG, WARNING, Oops or similar line while it runs.

set -u
cd "$(dirname "$0")/.." || exit 1

B=build
VARIANTS=$(echo "${SHMK_TEST_VARIANTS:-plain asan valgrind}" | tr , ' ')
TIMEOUT=${SHMK_TEST_TIMEOUT:-600}
passed=0
failed=0

if [ -z "${SHMK_TEST_NO_BUILD:-}" ]; then
	if ! make -s test-build >&2; then
		echo "0 passed, 1 failed"
		exit 1
	fi
fi

backend=${SHMK_BACKEND:-}
if [ -z "$backend" ]; then
	if [ -e /dev/shmk ]; then backend=kernel; else backend=posix; fi
fi
export SHMK_BACKEND=$backend

tests=${SHMK_TEST_ONLY:-$(cd tests && ls t_*.c | sed 's/\.c$//')}

dmesg_ok=
if [ "$backend" = kernel ] && dmesg >/dev/null 2>&1; then
	dmesg_ok=1
fi
kernel_log_lines() {
	dmesg 2>/dev/null | wc -l
}
kernel_log_bad() {	# $1: lines to skip
	dmesg 2>/dev/null | tail -n +"$(($1 + 1))" |
		grep -E 'BUG:|WARNING:|Oops|general protection|Call Trace|UBSAN|KASAN|kmemleak|refcount_t:|list_(add|del) corruption'
}

log=$(mktemp)
trap 'rm -f "$log"' EXIT

run_one() {	# variant test
	local variant=$1 t=$2 bin cmd status start end lines=0 bad
	case $variant in
	plain)	bin=$B/test-plain/$t; cmd=("$bin") ;;
	asan)	bin=$B/test-asan/$t; cmd=("$bin") ;;
	valgrind)
		bin=$B/test-plain/$t
		# Leaks are LeakSanitizer's job (asan): memcheck's leak scan
		# would crawl through every segment's whole reservation.
		cmd=(valgrind -q --error-exitcode=99 --leak-check=no "$bin") ;;
	esac
	if [ ! -x "$bin" ]; then
		echo "FAIL  $variant/$t: not built"
		failed=$((failed + 1))
		return
	fi
	[ -n "$dmesg_ok" ] && lines=$(kernel_log_lines)
	start=$(date +%s.%N)
	if [ "$variant" = valgrind ]; then
		SHMK_TEST_SCALE=small timeout -k 10 "$TIMEOUT" "${cmd[@]}" \
			>"$log" 2>&1
	else
		ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
			timeout -k 10 "$TIMEOUT" "${cmd[@]}" >"$log" 2>&1
	fi
	status=$?
	end=$(date +%s.%N)
	if [ -n "$dmesg_ok" ] && bad=$(kernel_log_bad "$lines"); then
		echo "kernel log:" >>"$log"
		echo "$bad" >>"$log"
		[ $status -eq 0 ] && status=200
	fi
	local secs
	secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
	case $status in
	0)
		echo "PASS  $variant/$t (${secs}s)"
		[ -n "${SHMK_TEST_VERBOSE:-}" ] && sed 's/^/      /' "$log"
		passed=$((passed + 1)) ;;
	77)
		echo "SKIP  $variant/$t: $(tail -n 1 "$log")"
		passed=$((passed + 1)) ;;
	*)
		echo "FAIL  $variant/$t (status $status, ${secs}s)"
		tail -n 40 "$log" | sed 's/^/      /'
		failed=$((failed + 1)) ;;
	esac
}

echo "libshmk tests: backend $backend, variants: $VARIANTS"
for variant in $VARIANTS; do
	if [ "$variant" = valgrind ] && ! command -v valgrind >/dev/null; then
		echo "valgrind is not installed: variant skipped"
		continue
	fi
	for t in $tests; do
		run_one "$variant" "$t"
	done
done

# Segments of tests that failed before unlinking them (posix backend): only
# those whose test process is gone (names end in its pid), so that a run
# beside this one keeps its segments.
for f in /dev/shm/shmk.t-*; do
	[ -e "$f" ] || continue
	pid=${f##*-}
	case $pid in
	*[!0-9]*|'') continue ;;
	esac
	[ -d "/proc/$pid" ] || rm -f "$f"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
