#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# fuzz/run.sh [shmk-fuzz options]: run shmk-fuzz as root in the test VM,
# then check the kernel log for reports. Ends with the suite summary line
# ("1 passed, 0 failed" or "0 passed, 1 failed") that tools/run-suites adds
# up. The VM rig (tools/vm/run) then checks that the module holds nothing,
# unloads it, runs a kmemleak scan on debug kernels and fails on any report
# the unload or the scan brings.
#
#   fuzz/run.sh -n 1000000 -c fuzz/corpus -o fuzz/corpus    (make fuzz)
#   fuzz/run.sh -b -d 90                                    (make fuzz-blind)
#   fuzz/run.sh --trinity SECONDS                           (make fuzz-trinity)
dir=$(cd "$(dirname "$0")" && pwd)
pat='\<BUG\>|\<WARNING\>|\<Oops\>|refcount_t|list_del corruption|sleeping function called from invalid context|scheduling while atomic|[Bb]ad page state|\<KASAN\>|possible circular locking|possible recursive locking|inconsistent lock state|kmemleak|general protection|Call Trace'

# shmk-fuzz lowers max_pages for its run and restores it; so does this
# script, in case the fuzzer itself was killed.
param=/sys/module/shmk/parameters/max_pages
saved=$(cat $param 2>/dev/null)
mark="shmk-fuzz-run-$$"
echo "$mark" >/dev/kmsg 2>/dev/null
rc=0
if [ "${1:-}" = --trinity ]; then
	secs=${2:-60}
	if ! command -v trinity >/dev/null; then
		echo "fuzz/run.sh: trinity is not installed (apt-get install trinity)"
		echo "0 passed, 1 failed"
		exit 1
	fi
	# -V takes a directory of victim files: one, the device. --dangerous:
	# trinity refuses to run as root otherwise (the VM is throwaway).
	cd /tmp || exit 1
	mkdir -p /tmp/trinity-victims
	ln -sf /dev/shmk /tmp/trinity-victims/shmk
	timeout -k 10 "$secs" trinity --dangerous -q -l off -C 2 \
		--disable-fds=sockets,perf,drm \
		-V /tmp/trinity-victims -c ioctl -c mmap -c munmap -c mremap \
		-c mprotect -c madvise -c close -c read -c write -c fallocate \
		-c splice -c msync >/tmp/trinity.log 2>&1
	st=$?
	tail -n 5 /tmp/trinity.log
	# 124: stopped by timeout, as intended.
	case $st in 0|124) ;; *) echo "trinity exited $st"; rc=1 ;; esac
	sleep 1
	echo "trinity: ran ${secs}s against /dev/shmk"
else
	"$dir/shmk-fuzz" "$@" || rc=1
fi
[ -n "$saved" ] && echo "$saved" >$param 2>/dev/null
reports=$(dmesg | sed -n "/$mark/,\$p" | grep -E "$pat")
n=$(printf '%s' "$reports" | grep -c . )
echo "fuzz/run.sh: $n kernel report lines"
if [ "$n" != 0 ]; then
	printf '%s\n' "$reports" | head -n 40
	rc=1
fi
if [ $rc = 0 ]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
exit $rc
