#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Runs the shmk selftest binaries (all *_test, or those named as arguments,
# with or without the _test suffix), each under timeout(1), and ends with
# one summary line: "N passed, N failed[, N skipped]". Exit status 1 when
# any failed. Each binary counts once: exit 0 passed, 4 (KSFT_SKIP) skipped,
# anything else (timeout included) failed.
#
# SHMK_TEST_TIMEOUT: seconds per binary (default 300).

dir=$(cd "$(dirname "$0")" && pwd)
tmo=${SHMK_TEST_TIMEOUT:-300}

# Default order: basic suites first, the stress test last; then any other.
order="segment registry mmap grow status sharing limits stress"

if [ $# -eq 0 ]; then
	for t in $order; do
		[ -e "$dir/${t}_test.c" ] || [ -e "$dir/${t}_test" ] && set -- "$@" "$t"
	done
	for f in $(cd "$dir" && ls *_test 2>/dev/null); do
		case " $order " in
		*" ${f%_test} "*) ;;
		*) set -- "$@" "$f" ;;
		esac
	done
	if [ $# -eq 0 ]; then
		echo "no test binaries in $dir (run make -C selftests)" >&2
		echo "0 passed, 1 failed"
		exit 1
	fi
fi

pass=0
fail=0
skip=0
failed=

for t in "$@"; do
	t=${t##*/}
	case $t in
	*_test) ;;
	*) t=${t}_test ;;
	esac
	bin=$dir/$t
	echo "# ==== $t"
	if [ ! -x "$bin" ]; then
		echo "FAIL $t (not built)"
		fail=$((fail + 1))
		failed="$failed $t"
		continue
	fi
	(cd "$dir" && timeout -k 10 "$tmo" "$bin")
	rc=$?
	case $rc in
	0)
		echo "PASS $t"
		pass=$((pass + 1))
		;;
	4)
		echo "SKIP $t"
		skip=$((skip + 1))
		;;
	124|137)
		echo "FAIL $t (timed out after ${tmo}s)"
		fail=$((fail + 1))
		failed="$failed $t"
		;;
	*)
		echo "FAIL $t (exit $rc)"
		fail=$((fail + 1))
		failed="$failed $t"
		;;
	esac
done

[ -n "$failed" ] && echo "# failed:$failed"
if [ $skip -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
[ $fail -eq 0 ]
