# SPDX-License-Identifier: GPL-2.0
#
# shmk top-level Makefile.
#
#   make                 build kmod/shmk.ko against KDIR
#   make demo            install what is missing, build, run the demo in a VM
#   make check           install what is missing, build, lint, run every suite
#                        in a VM
#   make vm-run CMD=...  run CMD as root in a VM with shmk.ko loaded
#   make lint            checkpatch --strict, sparse (C=2) and W=1, lintian on
#                        the Debian packages (make lint-debs)
#   make debs            the Debian packages, in build/debs/ (make dist: the
#                        source tarball, in build/dist/)
#   make check-kernel KVER=...
#                        the suites on one more installed Debian kernel (the
#                        module built for it under build/ko/KVER)
#   make check-kernels   the suites on every installed Debian kernel
#   make check-debug     build (once, cached) the debug kernel (KASAN,
#                        lockdep, kmemleak, fault injection) and run every
#                        suite on it
#   make deps-backports  install Debian's 6.12 kernel (image and headers)
#   make install         the module, the udev rule, libshmk, shmkctl (see
#                        "Installing" below for PREFIX, DESTDIR and the parts)
#   make uninstall       remove what make install put
#   make install-dkms    the module's sources for DKMS in /usr/src/shmk-VERSION
#   make check-install   make install/uninstall into a scratch DESTDIR list
#                        exactly the expected files
#   make check-dkms      dkms add/build/install for every installed kernel,
#                        in scratch DKMS trees
#   make check-packages  the Debian packages end to end: installed in a root
#                        of their own, DKMS, then modprobe, the examples and
#                        shmkctl in a VM booted on that root
#   make check-kselftest the selftests as the kselftest target "shmk" of a
#                        kernel tree (linux-source-6.1), in a VM
#   make fuzz            the coverage-guided uapi fuzzer (fuzz/shmk-fuzz,
#                        10^6 calls) on the debug kernel with KCOV, in a VM
#   make fuzz-blind      the fuzzer without coverage on KVER, FUZZ_SECONDS
#   make fuzz-trinity    Debian's trinity against /dev/shmk, FUZZ_SECONDS
#   make fuzz-lib        libshmk against a hostile segment: libFuzzer
#                        (clang, ASan, UBSan) mutates a populated segment's
#                        metadata, FUZZ_LIB_RUNS inputs, on the host (not
#                        part of make check; see fuzz/lib/README)
#   make fuzz-lib-kernel the same harness on the kernel backend, in a VM on
#                        KVER, for FUZZ_SECONDS
#   make coverage        line and branch coverage of kmod/ by the VM suites
#                        and the fuzzer, on the debug kernel (gcov, lcov):
#                        build/coverage/coverage.md and html/
#   make stress          the storms: stress-vm, 16 processes attaching,
#                        growing, shrinking, kicking, unlinking and detaching
#                        for STRESS_SECONDS (600) in a VM, then nothing left;
#                        and stress-lib
#   make stress-lib      the library's crash storm (lib/tests/stress_lib.c):
#                        STRESS_ROUNDS (1000) rounds of library users SIGKILLed
#                        in allocs, frees, directory and queue calls, each
#                        followed by shmk_check() and an account of every
#                        block; on the posix backend on the host, then on the
#                        kernel backend in a VM (not part of make check)
#
# KVER selects the Debian kernel (default: the running kernel when its
# headers are installed, else the newest installed headers); KDIR overrides
# the build tree, VM_KERNEL the image the VM boots and VM_MODULE the module
# it loads (default kmod/shmk.ko).

SHELL := /bin/bash
PROJECT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))

newest_kver = $(shell ls -d /lib/modules/*/build 2>/dev/null | \
		awk -F/ '{print $$4}' | sort -V | tail -n 1)
KVER ?= $(if $(wildcard /lib/modules/$(shell uname -r)/build),$(shell uname -r),$(newest_kver))
KDIR ?= /lib/modules/$(KVER)/build
VM_KERNEL ?=
VM_MODULE ?=
VM_TIMEOUT ?= 3000
CHECKPATCH ?= /usr/src/linux-source-6.1/scripts/checkpatch.pl
CHECK_LABEL ?= $(KVER)
# Per label, so that runs on several kernels at once keep their results apart.
CHECK_LOG = build/check-$(CHECK_LABEL).log

# With VM_KERNEL the rig reads the kernel version from the image.
VM_RUN = $(PROJECT)/tools/vm/run --timeout $(VM_TIMEOUT) \
	 $(if $(VM_KERNEL),--kernel $(VM_KERNEL),--kver $(KVER)) \
	 $(if $(VM_MODULE),--module $(VM_MODULE))

KERNEL_SRCS := $(filter-out %.mod.c,$(wildcard kmod/*.c kmod/*.h)) uapi/linux/shmk.h

.PHONY: all modules deps lint selftests lib lib-tests shmkctl examples check \
	check-build userspace check-run check-kernel check-kernels check-debug \
	deps-backports demo vm-run bench-grow bench-alloc bench-ipc bench clean \
	install uninstall install-module install-udev install-modules-load \
	install-lib install-tools install-dkms uninstall-module uninstall-udev \
	uninstall-modules-load uninstall-lib uninstall-tools uninstall-dkms \
	check-install print-kver check-dkms dist debs lint-debs check-packages \
	check-kselftest fuzz-build fuzz fuzz-blind fuzz-trinity fuzz-lib \
	fuzz-lib-build fuzz-lib-kernel stress stress-vm stress-lib coverage

all: modules

modules:
	@test -d "$(KDIR)" || { echo "No kernel build tree at KDIR=$(KDIR): run 'make deps' (root) or set KDIR."; exit 1; }
	$(MAKE) -C $(KDIR) M=$(PROJECT) modules

deps:
	@if [ "$${SHMK_SKIP_DEPS:-0}" != 1 ]; then $(PROJECT)/tools/install-deps.sh; fi

# lintian on the Debian packages too (lint-debs builds them first); the
# SPDX lines of every source file (tools/check-spdx, see COPYING); a man page
# listed in libshmk(3) for every public function (tools/check-docs).
lint: lint-debs lint-spdx lint-docs
	$(CHECKPATCH) --strict --no-tree --terse --show-types \
		--ignore FILE_PATH_CHANGES,SPDX_LICENSE_TAG -f $(KERNEL_SRCS)
	$(MAKE) -C $(KDIR) M=$(PROJECT) W=1 C=2 modules 2>&1 | tee build/lint.log
	@! grep -E 'warning:|error:' build/lint.log

selftests:
	$(MAKE) -C selftests
	$(MAKE) -C selftests/netlink

lib:
	$(MAKE) -C lib

lib-tests:
	$(MAKE) -C lib test-build stress-build

shmkctl:
	$(MAKE) -C tools/shmkctl

examples: lib
	$(MAKE) -C examples

build:
	mkdir -p build

lint: | build

vm-run: modules
	$(VM_RUN) -- '$(CMD)'

# Suites: NAME=COMMAND, each ending its output with "N passed, N failed".
# libshmk runs on the host on its posix backend (plain, ASan+UBSan and
# valgrind builds) and in the VM against /dev/shmk (plain and ASan+UBSan).
# (Double quotes only: VM_SUITES goes into a single-quoted guest command.)
# "install": make install/uninstall into a scratch DESTDIR (tools/check-install);
# "dkms": dkms add/build/install/uninstall/remove for every installed kernel in
# scratch DKMS trees (tools/check-dkms).
# LIB_VM_VARIANTS: the library's builds run in the VM (plain and
# ASan+UBSan; .ci/run runs plain only on its second kernel, for time).
LIB_VM_VARIANTS ?= plain,asan
# stress-lib-*: short runs of make stress-lib's crash storm, rounds on the
# host and in the VM (where a round costs more).
STRESS_CHECK_ROUNDS ?= 200
STRESS_CHECK_ROUNDS_VM ?= 100
HOST_SUITES ?= libshmk-posix="SHMK_TEST_NO_BUILD=1 SHMK_BACKEND=posix lib/tests/run.sh" \
	stress-lib-posix="SHMK_BACKEND=posix lib/build/test-plain/stress_lib -r $(STRESS_CHECK_ROUNDS) && echo 1 passed, 0 failed" \
	install="tools/check-install $(CHECK_INSTALL_ARGS)" \
	dkms=tools/check-dkms
VM_SUITES ?= kselftests=selftests/run.sh netlink=selftests/netlink/run.sh \
	fuzz-blind="fuzz/run.sh -b -d 90 -c fuzz/corpus" \
	libshmk-kernel="SHMK_TEST_NO_BUILD=1 SHMK_BACKEND=kernel SHMK_TEST_VARIANTS=$(LIB_VM_VARIANTS) lib/tests/run.sh" \
	stress-lib-kernel="SHMK_BACKEND=kernel lib/build/test-plain/stress_lib -r $(STRESS_CHECK_ROUNDS_VM) && echo 1 passed, 0 failed"
# Segments have 2 MiB pages by default; a second boot loads the module with
# huge_pages=0 (4 KiB pages only) and runs the kernel selftests and the
# library against it once more. Empty: no second boot.
VM_SUITES_4K ?= kselftests-4k=selftests/run.sh \
	libshmk-kernel-4k="SHMK_TEST_NO_BUILD=1 SHMK_BACKEND=kernel SHMK_TEST_VARIANTS=plain lib/tests/run.sh"

check: deps
	$(MAKE) check-build
	$(MAKE) lint
	$(MAKE) check-run

check-build: modules userspace

# Everything but the module (the same binaries serve every kernel).
userspace: selftests lib-tests shmkctl examples fuzz-build

# The rig's own checks (dmesg clean, rmmod, nothing left allocated) count as
# one more test; the grand total is the last line.
check-run: | build
	@rm -f $(CHECK_LOG); rc=0; \
	$(if $(strip $(HOST_SUITES)),tools/run-suites --log $(CHECK_LOG) \
		$(HOST_SUITES) || rc=1;) \
	if $(VM_RUN) -- 'tools/run-suites --log $(CHECK_LOG) $(VM_SUITES)'; then \
		echo "suite vm-checks: 1 passed, 0 failed" >>$(CHECK_LOG); \
	else \
		rc=1; echo "suite vm-checks: 0 passed, 1 failed" >>$(CHECK_LOG); \
	fi; \
	if [ -z "$(if $(strip $(VM_SUITES_4K)),4k)" ]; then \
		:; \
	elif $(VM_RUN) --modparams huge_pages=0 \
		-- 'tools/run-suites --log $(CHECK_LOG) $(VM_SUITES_4K)'; then \
		echo "suite vm-checks-4k: 1 passed, 0 failed" >>$(CHECK_LOG); \
	else \
		rc=1; echo "suite vm-checks-4k: 0 passed, 1 failed" >>$(CHECK_LOG); \
	fi; \
	echo "# ==== make check ($(CHECK_LABEL))"; \
	cat $(CHECK_LOG); \
	tools/run-suites --total $(CHECK_LOG) || rc=1; \
	exit $$rc

# Other kernels: the module is built for each under build/ko/ (kmod/shmk.ko
# stays the default build); the host suites do not depend on the kernel and
# run only in make check.
check-kernel: userspace
	@test -d /lib/modules/$(KVER)/build || { echo "no headers for $(KVER)"; exit 1; }
	tools/build-module /lib/modules/$(KVER)/build build/ko/$(KVER) W=1
	$(MAKE) check-run KVER=$(KVER) HOST_SUITES= \
		VM_MODULE=$(PROJECT)/build/ko/$(KVER)/kmod/shmk.ko

check-kernels: deps
	$(MAKE) userspace
	@rc=0; ok=; bad=; \
	for k in $$(ls -d /lib/modules/*/build | awk -F/ '{print $$4}' | sort -V); do \
		[ -e /boot/vmlinuz-$$k ] || continue; \
		if $(MAKE) check-kernel KVER=$$k; then ok="$$ok $$k"; \
		else rc=1; bad="$$bad $$k"; fi; \
	done; \
	echo "# check-kernels: passed:$${ok:- none}; failed:$${bad:- none}"; \
	exit $$rc

deps-backports: deps
	tools/kernels/install-backports

# The debug kernel: about 25 minutes to build the first time (cached under
# /var/cache/shmk), a slower boot and suites under KASAN afterwards.
DEBUG_VM_TIMEOUT ?= 5400
# Every suite of make check; the posix one too (shmem and futexes under
# KASAN), without valgrind, which would take most of an hour there.
DEBUG_VM_SUITES ?= $(VM_SUITES) \
	libshmk-posix="SHMK_TEST_NO_BUILD=1 SHMK_BACKEND=posix SHMK_TEST_VARIANTS=plain,asan lib/tests/run.sh"
check-debug: deps
	tools/kernels/build-debug --install-deps
	tools/kernels/build-debug
	$(MAKE) userspace
	tools/build-module "$$(tools/kernels/build-debug --print-kdir)" \
		build/ko/debug W=1
	$(MAKE) check-run HOST_SUITES= CHECK_LABEL=debug \
		VM_SUITES='$(DEBUG_VM_SUITES)' VM_TIMEOUT=$(DEBUG_VM_TIMEOUT) \
		VM_SUITES_4K='kselftests-4k=selftests/run.sh' \
		VM_KERNEL="$$(tools/kernels/build-debug --print-image)" \
		VM_MODULE=$(PROJECT)/build/ko/debug/kmod/shmk.ko

# The uapi fuzzer (fuzz/shmk-fuzz.c). make fuzz: on the debug kernel, with
# the module built with KCOV_INSTRUMENT=y so that KCOV traces its code (and
# only its code: the debug kernel has KCOV_INSTRUMENT_ALL off), booted with
# nokaslr (KCOV reports PCs minus the KASLR offset, which would put the
# module's outside its own sections), FUZZ_CALLS
# calls; new inputs join fuzz/corpus/. fuzz/run.sh fails on any kernel
# report, the VM rig on anything left allocated, a failed rmmod or a
# kmemleak report.
FUZZ_CALLS ?= 1000000
FUZZ_SECONDS ?= 300
FUZZ_ARGS ?=
fuzz-build:
	$(MAKE) -C fuzz

fuzz: deps fuzz-build
	tools/kernels/build-debug --install-deps
	tools/kernels/build-debug
	tools/build-module "$$(tools/kernels/build-debug --print-kdir)" \
		build/ko/fuzz W=1 KCOV_INSTRUMENT=y
	SHMK_VM_APPEND=nokaslr $(PROJECT)/tools/vm/run --timeout $(DEBUG_VM_TIMEOUT) \
		--kernel "$$(tools/kernels/build-debug --print-image)" \
		--module $(PROJECT)/build/ko/fuzz/kmod/shmk.ko \
		--log build/vm/fuzz.log \
		-- 'fuzz/run.sh -n $(FUZZ_CALLS) -c fuzz/corpus -o fuzz/corpus $(FUZZ_ARGS)'

fuzz-blind: modules fuzz-build
	$(VM_RUN) --log build/vm/fuzz-blind.log \
		-- 'fuzz/run.sh -b -d $(FUZZ_SECONDS) -c fuzz/corpus $(FUZZ_ARGS)'

fuzz-trinity: deps modules
	$(VM_RUN) --log build/vm/fuzz-trinity.log \
		-- 'fuzz/run.sh --trinity $(FUZZ_SECONDS)'

# The library against a hostile segment (fuzz/lib/hostile.c): a libFuzzer
# binary built with clang from the library's sources (ASan, UBSan), run
# FUZZ_LIB_RUNS inputs on the host, posix backend. New inputs go to
# build/fuzz-lib/corpus/ (the seeds stay in fuzz/lib-corpus/), a crash or
# a hang (FUZZ_LIB_TIMEOUT seconds) stops it and lands in
# build/fuzz-lib/artifacts/. Not part of make check.
FUZZ_LIB_RUNS ?= 10000000
FUZZ_LIB_TIMEOUT ?= 10
FUZZ_LIB_ARGS ?=
FUZZ_LIB_CC ?= clang
FUZZ_LIB_SRCS := fuzz/lib/hostile.c $(wildcard lib/src/*.c)
FUZZ_LIB_HDRS := $(wildcard lib/src/*.h) lib/include/shmk.h

fuzz-lib-build: build/fuzz-lib/hostile

build/fuzz-lib/hostile: $(FUZZ_LIB_SRCS) $(FUZZ_LIB_HDRS) lib/VERSION \
		lib/include/shmk_version.h.in
	$(MAKE) -C lib include/shmk_version.h
	mkdir -p build/fuzz-lib
	$(FUZZ_LIB_CC) -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=all -fno-omit-frame-pointer \
		-D_GNU_SOURCE -Ilib/include -Ilib/src -Iuapi -Wall -Wextra \
		-Werror -Wshadow -pthread -o $@ $(FUZZ_LIB_SRCS)

fuzz-lib: fuzz-lib-build
	mkdir -p build/fuzz-lib/corpus build/fuzz-lib/artifacts
	build/fuzz-lib/hostile -runs=$(FUZZ_LIB_RUNS) \
		-timeout=$(FUZZ_LIB_TIMEOUT) -max_len=512 \
		-artifact_prefix=build/fuzz-lib/artifacts/ \
		build/fuzz-lib/corpus fuzz/lib-corpus $(FUZZ_LIB_ARGS)

# The harness on /dev/shmk: a resize goes through the module. Under TCG an
# input costs about 20 ms here, so this one runs for FUZZ_SECONDS, not for
# a number of inputs.
fuzz-lib-kernel: modules fuzz-lib-build
	mkdir -p build/fuzz-lib/kernel-corpus build/fuzz-lib/kernel-artifacts
	$(VM_RUN) --log build/vm/fuzz-lib-kernel.log -- \
		'SHMK_FUZZ_BACKEND=kernel build/fuzz-lib/hostile \
		-max_total_time=$(FUZZ_SECONDS) -timeout=$(FUZZ_LIB_TIMEOUT) \
		-max_len=512 -artifact_prefix=build/fuzz-lib/kernel-artifacts/ \
		build/fuzz-lib/kernel-corpus fuzz/lib-corpus $(FUZZ_LIB_ARGS)'

# tools/kernels/coverage: the module with GCOV_PROFILE=y (and
# KCOV_INSTRUMENT=y) on the debug kernel; the VM suites of make check that
# reach the module, and COVERAGE_FUZZ_CALLS fuzzer calls.
COVERAGE_FUZZ_CALLS ?= 200000
coverage: deps userspace
	tools/kernels/build-debug --install-deps
	tools/kernels/build-debug
	FUZZ_CALLS=$(COVERAGE_FUZZ_CALLS) tools/kernels/coverage

# selftests/storm_test.c for STRESS_SECONDS (make check runs it for 30 s as
# part of the kselftests).
STRESS_SECONDS ?= 600
STRESS_ROUNDS ?= 1000
stress: stress-vm stress-lib

stress-vm: modules selftests
	$(VM_RUN) --log build/vm/stress.log -- \
		'SHMK_STORM_SECS=$(STRESS_SECONDS) SHMK_TEST_TIMEOUT=$$(($(STRESS_SECONDS) + 300)) selftests/run.sh storm'

# The library's crash storm, lib/tests/stress_lib.c (its comment says what
# each round checks); the last line of each run gives the rounds survived,
# the kills and the blocks lost with their bound.
stress-lib: modules
	$(MAKE) -C lib stress-build
	SHMK_BACKEND=posix lib/build/test-plain/stress_lib -r $(STRESS_ROUNDS)
	$(VM_RUN) --log build/vm/stress-lib.log -- \
		'SHMK_BACKEND=kernel lib/build/test-plain/stress_lib -r $(STRESS_ROUNDS)'

demo: deps
	$(MAKE) modules examples
	$(VM_RUN) -- 'examples/grow_demo && examples/heap_demo && examples/pingpong -n 1000'

bench:
	$(MAKE) -C bench

# Peer mapping against memfd, in one VM boot; writes build/bench/grow.*
BENCH_REPS ?= 3
bench-grow: deps
	$(MAKE) modules bench
	mkdir -p build/bench
	$(VM_RUN) -- 'bench/grow_bench -r $(BENCH_REPS) > build/bench/grow.csv'
	SHMK_BENCH_CMD="make bench-grow BENCH_REPS=$(BENCH_REPS)" \
		bench/grow-report build/bench/grow.csv build/bench
	cat build/bench/grow.md

# Allocator against Boost.Interprocess and glibc malloc, on the host (libshmk
# on its posix backend, no VM); writes build/bench/alloc.{csv,md,png}.
ALLOC_REPS ?= 7
bench-alloc: deps
	$(MAKE) -C bench alloc_bench
	mkdir -p build/bench
	bench/alloc_bench -r $(ALLOC_REPS) > build/bench/alloc.csv
	SHMK_BENCH_CMD="make bench-alloc ALLOC_REPS=$(ALLOC_REPS)" \
		bench/alloc-report build/bench/alloc.csv build/bench
	cat build/bench/alloc.md

# Segment images (issue 14): a segment of IMAGE_MIB MiB holding IMAGE_OBJS
# named objects; save against cp + sync, load against cat from a warm page
# cache (the floor), the file backend's open, and the same objects rebuilt
# in a Boost managed_mapped_file; writes build/bench/image.md.
IMAGE_MIB ?= 1024
IMAGE_OBJS ?= 1000000
IMAGE_DIR ?= /var/tmp
bench-image:
	$(MAKE) -C bench image_bench
	mkdir -p build/bench
	bench/image_bench -s $(IMAGE_MIB) -n $(IMAGE_OBJS) -d $(IMAGE_DIR) | \
		tee build/bench/image.md

.PHONY: bench-image

# Message queues against iceoryx (RouDi started and stopped by bench/ipc-run),
# POSIX mqueue, a socket pair, pipes and the cache-line and futex floors, on
# the host (libshmk on its posix backend); IPC_ITERS round trips and IPC_MSGS
# streamed messages per case; writes build/bench/ipc.{csv,md,png}.
IPC_ITERS ?= 20000
IPC_MSGS ?= 20000
bench-ipc: deps
	$(MAKE) -C bench ipc
	SHMK_BENCH_CMD="make bench-ipc IPC_ITERS=$(IPC_ITERS) IPC_MSGS=$(IPC_MSGS)" \
		bench/ipc-run build/bench $(IPC_ITERS) $(IPC_MSGS)
	cat build/bench/ipc.md

# ---- Installing -------------------------------------------------------------
#
#   make && sudo make install [PREFIX=/usr/local] [DESTDIR=] [MODULES_LOAD=1]
#
# installs, each part also a target of its own:
#   install-module   kmod/shmk.ko as /lib/modules/KVER/extra/kmod/shmk.ko
#                    (kbuild's modules_install, which signs and compresses
#                    it as the kernel's configuration says; INSTALL_MOD_DIR
#                    replaces "extra"), then depmod KVER. The module
#                    goes under /lib/modules whatever PREFIX is; with DESTDIR
#                    under DESTDIR/lib/modules, and depmod is left to whoever
#                    installs that tree.
#   install-udev     udev/60-shmk.rules: /dev/shmk mode 0666 (why:
#                    Documentation/admin-guide/shmk.rst, "Device permissions")
#   install-lib      libshmk: shared and static library, <shmk.h>, shmk.pc,
#                    the section 3 man pages (lib/Makefile install)
#   install-tools    shmkctl, shmkctl(8) and its bash completion
#   install-modules-load
#                    modules-load.d/shmk.conf, which loads the module at boot;
#                    part of make install only with MODULES_LOAD=1
# and install-dkms (not part of make install) puts the module's sources and
# dkms.conf in /usr/src/shmk-VERSION for "dkms add" instead.
# The directories are the usual variables: PREFIX, SBINDIR, LIBDIR,
# INCLUDEDIR, MANDIR, PKGCONFIGDIR, BASHCOMPDIR, UDEVRULESDIR,
# MODULESLOADDIR; udev and systemd-modules-load read both /usr/lib and
# /usr/local/lib. Without DESTDIR, install also runs depmod, ldconfig and
# udevadm control --reload when they apply.

VERSION := $(shell cat $(PROJECT)/lib/VERSION)
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
UDEVRULESDIR ?= $(PREFIX)/lib/udev/rules.d
MODULESLOADDIR ?= $(PREFIX)/lib/modules-load.d
DKMSDIR ?= /usr/src/shmk-$(VERSION)
INSTALL_MOD_DIR ?= extra
MODULES_LOAD ?= 0
MODDIR = $(DESTDIR)/lib/modules/$(KVER)/$(INSTALL_MOD_DIR)/kmod

DIRS_VARS = PREFIX='$(PREFIX)' LIBDIR='$(LIBDIR)' INCLUDEDIR='$(INCLUDEDIR)' \
	    MANDIR='$(MANDIR)' PKGCONFIGDIR='$(PKGCONFIGDIR)' DESTDIR='$(DESTDIR)'

install: install-module install-udev install-lib install-tools \
	 $(if $(filter 1 yes,$(MODULES_LOAD)),install-modules-load)

uninstall: uninstall-module uninstall-udev uninstall-modules-load \
	   uninstall-lib uninstall-tools

install-module: modules
	$(MAKE) -C $(KDIR) M=$(PROJECT) INSTALL_MOD_PATH=$(DESTDIR) \
		INSTALL_MOD_DIR=$(INSTALL_MOD_DIR) modules_install
	$(if $(DESTDIR),,depmod -a $(KVER))

uninstall-module:
	rm -f $(MODDIR)/shmk.ko $(MODDIR)/shmk.ko.xz $(MODDIR)/shmk.ko.gz \
	      $(MODDIR)/shmk.ko.zst
	-rmdir $(MODDIR) $(dir $(MODDIR)) 2>/dev/null
	$(if $(DESTDIR),,depmod -a $(KVER))

install-udev:
	install -D -m 644 udev/60-shmk.rules $(DESTDIR)$(UDEVRULESDIR)/60-shmk.rules
	$(if $(DESTDIR),,-test ! -d /run/udev || udevadm control --reload)

uninstall-udev:
	rm -f $(DESTDIR)$(UDEVRULESDIR)/60-shmk.rules

install-modules-load:
	install -D -m 644 modules-load.d/shmk.conf \
		$(DESTDIR)$(MODULESLOADDIR)/shmk.conf

uninstall-modules-load:
	rm -f $(DESTDIR)$(MODULESLOADDIR)/shmk.conf

install-lib:
	$(MAKE) -C lib install $(DIRS_VARS)
	$(if $(DESTDIR),,-ldconfig)

uninstall-lib:
	$(MAKE) -C lib uninstall $(DIRS_VARS)
	$(if $(DESTDIR),,-ldconfig)

install-tools:
	$(MAKE) -C tools/shmkctl install PREFIX='$(PREFIX)' SBINDIR='$(SBINDIR)' \
		MANDIR='$(MANDIR)' BASHCOMPDIR='$(BASHCOMPDIR)' DESTDIR='$(DESTDIR)'

uninstall-tools:
	$(MAKE) -C tools/shmkctl uninstall PREFIX='$(PREFIX)' SBINDIR='$(SBINDIR)' \
		MANDIR='$(MANDIR)' BASHCOMPDIR='$(BASHCOMPDIR)' DESTDIR='$(DESTDIR)'

# What DKMS builds: the top Kbuild, kmod/ and the uapi header.
DKMS_FILES = Kbuild kmod/Kbuild $(sort $(filter-out %.mod.c,$(wildcard kmod/*.c))) \
	     $(sort $(wildcard kmod/*.h)) uapi/linux/shmk.h

install-dkms:
	install -d $(DESTDIR)$(DKMSDIR)/kmod $(DESTDIR)$(DKMSDIR)/uapi/linux
	for f in $(DKMS_FILES); do install -m 644 $$f $(DESTDIR)$(DKMSDIR)/$$f || exit 1; done
	sed 's/#MODULE_VERSION#/$(VERSION)/' dkms.conf > $(DESTDIR)$(DKMSDIR)/dkms.conf
	chmod 644 $(DESTDIR)$(DKMSDIR)/dkms.conf

uninstall-dkms:
	rm -rf $(DESTDIR)$(DKMSDIR)

# dkms add/build/install/uninstall/remove for every kernel that has headers
# (or KVERS="..."), in scratch trees under build/dkms.
check-dkms:
	tools/check-dkms $(KVERS)

# make install and uninstall into a scratch DESTDIR: install must put exactly
# the files tools/install-files.txt lists, uninstall must remove them all.
CHECK_INSTALL_ARGS = KVER=$(KVER) $(if $(filter command line,$(origin KDIR)),KDIR=$(KDIR))
check-install:
	tools/check-install $(CHECK_INSTALL_ARGS)

print-kver:
	@echo $(KVER)

# ---- Releases and Debian packages ---------------------------------------------
#
#   make dist    build/dist/shmk-VERSION.tar.xz: the files git tracks (as they
#                are in the working tree), VERSION from lib/VERSION
#   make debs    the Debian packages, built with dpkg-buildpackage -us -uc -b
#                from that tarball unpacked under build/debs/ (so that the
#                source tree stays as it is): build/debs/*.deb
#   make lint-debs  lintian on them; every warning or error fails it (the
#                remaining tags are overridden in debian/*.lintian-overrides,
#                each with its reason)

DIST_TARBALL = build/dist/shmk-$(VERSION).tar.xz
DEBS_DIR = build/debs

dist: | build
	@git rev-parse --is-inside-work-tree >/dev/null 2>&1 || \
		{ echo "make dist: needs a git checkout (it ships the files git tracks)"; exit 1; }
	@mkdir -p build/dist
	git ls-files | while read -r f; do [ -e "$$f" ] && echo "$$f"; done | \
		tar -c --owner=0 --group=0 --numeric-owner --sort=name \
		    --mtime=@$$(git log -1 --format=%ct) \
		    --transform 's,^,shmk-$(VERSION)/,' -T - | \
		xz -6 >$(DIST_TARBALL).tmp
	mv -f $(DIST_TARBALL).tmp $(DIST_TARBALL)
	@echo "$(DIST_TARBALL)"

debs: dist
	rm -rf $(DEBS_DIR)
	mkdir -p $(DEBS_DIR)
	cp $(DIST_TARBALL) $(DEBS_DIR)/shmk_$(VERSION).orig.tar.xz
	tar -C $(DEBS_DIR) -xJf $(DIST_TARBALL)
	cd $(DEBS_DIR)/shmk-$(VERSION) && dpkg-buildpackage -us -uc -b
	@ls $(DEBS_DIR)/*.deb

lint-spdx:
	tools/check-spdx

lint-docs:
	tools/check-docs
	tools/check-docs --self-test

lint-debs: debs
	lintian --fail-on error,warning --display-info --info \
		$(DEBS_DIR)/shmk_*.changes

# The packages end to end: installed into a root of their own, DKMS builds
# the module there, the VM boots KVER and uses that root (modprobe, the
# examples rebuilt with pkg-config, shmkctl list); then dpkg --purge.
# Root only (overlayfs, chroot). About 4 minutes after make debs.
check-packages: debs
	tools/check-packages --kver $(KVER)

# The selftests as a kselftest target (TARGETS=shmk) of a tree made from
# Debian's linux-source-6.1, built on the host, run in the VM.
check-kselftest: modules
	tools/check-kselftest --timeout $(VM_TIMEOUT) --log build/vm/kselftest-$(CHECK_LABEL).log \
		$(if $(VM_KERNEL),--kernel $(VM_KERNEL),--kver $(KVER)) \
		$(if $(VM_MODULE),--module $(VM_MODULE))

# Lookups among 100k names on the kernel backend, in one VM boot: segments
# with 2 MiB pages, then with 4 KiB pages (huge_pages=0), to show what TLB
# misses cost; Boost.Interprocess in the same boot as the reference. Writes
# build/bench/lookup-kernel.{csv,md}.
bench-alloc-kernel: deps
	$(MAKE) modules
	$(MAKE) -C bench alloc_bench
	mkdir -p build/bench
	$(VM_RUN) -- 'P=/sys/module/shmk/parameters/huge_pages; \
		for m in 2m 4k; do \
			if [ $$m = 2m ]; then echo 1 >$$P; else echo 0 >$$P; fi; \
			bench/alloc_bench -r $(ALLOC_REPS) -p 1 -x lookup \
				-i libshmk,boost -b kernel -n 100000 | \
				sed "1!s/^/$$m,/;1s/^/pages,/" || exit 1; \
		done > build/bench/lookup-kernel.csv'
	SHMK_BENCH_CMD="make bench-alloc-kernel ALLOC_REPS=$(ALLOC_REPS)" \
		bench/lookup-report build/bench/lookup-kernel.csv \
		> build/bench/lookup-kernel.md
	cat build/bench/lookup-kernel.md

clean:
	-$(MAKE) -C $(KDIR) M=$(PROJECT) clean
	-$(MAKE) -C bench clean
	-$(MAKE) -C selftests clean
	-$(MAKE) -C selftests/netlink clean
	-$(MAKE) -C lib clean
	-$(MAKE) -C tools/shmkctl clean
	-$(MAKE) -C examples clean
	rm -rf build
