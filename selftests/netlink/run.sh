#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Runs the netlink and shmkctl tests (root, in the VM, module loaded):
#   spec_test.py      the YAML spec against the uapi header
#   nl_raw_test       the family on a raw socket (kselftest harness)
#   shmkctl_test.py   shmkctl end to end (json, dumps, watch, permissions,
#                     kick, namespaces, queues, save, load and image-info)
# and checks that the kernel log stayed clean meanwhile. Every test case
# counts once (the KTAP "ok"/"not ok" lines of the programs; the log check
# is one more), and the last line is "N passed, N failed[, N skipped]".
# Exit status 1 when any failed.
#
# Arguments: test programs to run (default: all three). SHMK_TEST_TIMEOUT:
# seconds per program (default 600).

dir=$(cd "$(dirname "$0")" && pwd)
tmo=${SHMK_TEST_TIMEOUT:-600}
[ $# -gt 0 ] || set -- spec_test.py nl_raw_test shmkctl_test.py

out=$(mktemp)
trap 'rm -f "$out"' EXIT
pass=0
fail=0
skip=0
failed=

# The kernel log from here on must stay free of warnings.
mark="shmk-netlink-selftests: start $$"
echo "$mark" >/dev/kmsg 2>/dev/null

for t in "$@"; do
	t=${t##*/}
	echo "# ==== $t"
	if [ ! -x "$dir/$t" ]; then
		echo "not ok - $t (not built: make -C selftests/netlink)"
		fail=$((fail + 1))
		failed="$failed $t"
		continue
	fi
	(cd "$dir" && timeout -k 10 "$tmo" "./$t") >"$out" 2>&1
	rc=$?
	cat "$out"
	p=$(grep -Ec '^ok [0-9]+ ' "$out")
	s=$(grep -Ec '^ok [0-9]+ .*# SKIP' "$out")
	f=$(grep -Ec '^not ok [0-9]+ ' "$out")
	pass=$((pass + p - s))
	skip=$((skip + s))
	fail=$((fail + f))
	[ "$f" -gt 0 ] && failed="$failed $t"
	# A crash, a timeout or a bail-out without a "not ok" line still fails.
	if [ $rc -ne 0 ] && [ $rc -ne 4 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $t exited with status $rc"
		fail=$((fail + 1))
		failed="$failed $t"
	fi
done

echo "# ==== kernel log"
if dmesg >/dev/null 2>&1; then
	bad=$(dmesg | sed -n "/$mark/,\$p" |
	      grep -E '\<BUG\>|\<WARNING\>|\<Oops\>|Call Trace|refcount_t|list_del corruption|sleeping function called|scheduling while atomic|\<KASAN\>|possible (circular|recursive) locking|general protection')
	if [ -n "$bad" ]; then
		echo "$bad" | head -n 20 | sed 's/^/# /'
		echo "not ok - kernel log clean"
		fail=$((fail + 1))
		failed="$failed dmesg"
	else
		echo "ok - kernel log clean"
		pass=$((pass + 1))
	fi
fi

[ -n "$failed" ] && echo "# failed:$failed"
if [ $skip -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
[ $fail -eq 0 ]
