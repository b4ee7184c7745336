#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Runs the shmk selftest binaries (all *_test, or those named as arguments,
# with or without the _test suffix), each under timeout(1), and ends with
# one summary line: "N passed, N failed[, N skipped]". Exit status 1 when
# any failed. Every test case counts once, from the harness's "# Totals:"
# line; a binary that exits non-zero (timeout included) without reporting a
# failed case counts one more failure, and one that exits 4 (KSFT_SKIP)
# without totals counts one skip.
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

out=$(mktemp)
trap 'rm -f "$out" "$out.rc"' EXIT
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
	{ (cd "$dir" && timeout -k 10 "$tmo" "$bin") 2>&1; echo $? >"$out.rc"; } |
		tee "$out"
	rc=$(cat "$out.rc")
	# "# Totals: pass:N fail:N xfail:N xpass:N skip:N error:N"
	tot=$(sed -n 's/^# Totals: //p' "$out" | tail -n 1)
	p=0 f=0 s=0
	if [ -n "$tot" ]; then
		p=$(echo " $tot" | sed -n 's/.* pass:\([0-9]*\).*/\1/p')
		f=$(echo " $tot" | sed -n 's/.* fail:\([0-9]*\).*/\1/p')
		s=$(echo " $tot" | sed -n 's/.* skip:\([0-9]*\).*/\1/p')
		e=$(echo " $tot" | sed -n 's/.* error:\([0-9]*\).*/\1/p')
		f=$((f + ${e:-0}))
	fi
	case $rc in
	0)	;;
	4)	[ -z "$tot" ] && s=1 ;;
	124|137)
		echo "# $t timed out after ${tmo}s"
		[ "$f" -eq 0 ] && f=1 ;;
	*)
		echo "# $t exited with status $rc"
		[ "$f" -eq 0 ] && f=1 ;;
	esac
	if [ "$f" -gt 0 ]; then
		echo "FAIL $t ($p passed, $f failed)"
		failed="$failed $t"
	elif [ "$s" -gt 0 ] && [ "$p" -eq 0 ]; then
		echo "SKIP $t"
	else
		msg="$p passed"
		[ "$s" -gt 0 ] && msg="$msg, $s skipped"
		echo "PASS $t ($msg)"
	fi
	pass=$((pass + p))
	fail=$((fail + f))
	skip=$((skip + s))
done

[ -n "$failed" ] && echo "# failed:$failed"
if [ $skip -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
[ $fail -eq 0 ]
