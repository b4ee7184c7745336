# SPDX-License-Identifier: GPL-2.0
#
# shmk top-level Makefile.
#
#   make                 build kmod/shmk.ko against KDIR
#   make demo            install what is missing, build, run the demo in a VM
#   make check           install what is missing, build, lint, run every suite
#                        in a VM
#   make vm-run CMD=...  run CMD as root in a VM with shmk.ko loaded
#   make lint            checkpatch --strict, sparse (C=2) and W=1
#
# KVER selects the Debian kernel (default: the running kernel when its
# headers are installed, else the newest installed headers); KDIR overrides
# the build tree and VM_KERNEL the image the VM boots.

SHELL := /bin/bash
PROJECT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))

newest_kver = $(shell ls -d /lib/modules/*/build 2>/dev/null | \
		awk -F/ '{print $$4}' | sort -V | tail -n 1)
KVER ?= $(if $(wildcard /lib/modules/$(shell uname -r)/build),$(shell uname -r),$(newest_kver))
KDIR ?= /lib/modules/$(KVER)/build
VM_KERNEL ?=
VM_TIMEOUT ?= 3000
CHECKPATCH ?= /usr/src/linux-source-6.1/scripts/checkpatch.pl

VM_RUN = $(PROJECT)/tools/vm/run --kver $(KVER) --timeout $(VM_TIMEOUT) \
	 $(if $(VM_KERNEL),--kernel $(VM_KERNEL))

KERNEL_SRCS := $(filter-out %.mod.c,$(wildcard kmod/*.c kmod/*.h)) uapi/linux/shmk.h

.PHONY: all modules deps lint selftests lib examples check check-build check-run \
	demo vm-run \
	bench-grow bench clean

all: modules

modules:
	@test -d "$(KDIR)" || { echo "No kernel build tree at KDIR=$(KDIR): run 'make deps' (root) or set KDIR."; exit 1; }
	$(MAKE) -C $(KDIR) M=$(PROJECT) modules

deps:
	@if [ "$${SHMK_SKIP_DEPS:-0}" != 1 ]; then $(PROJECT)/tools/install-deps.sh; fi

lint:
	$(CHECKPATCH) --strict --no-tree --terse --show-types \
		--ignore FILE_PATH_CHANGES,SPDX_LICENSE_TAG -f $(KERNEL_SRCS)
	$(MAKE) -C $(KDIR) M=$(PROJECT) W=1 C=2 modules 2>&1 | tee build/lint.log
	@! grep -E 'warning:|error:' build/lint.log

selftests:
	$(MAKE) -C selftests

lib:
	$(MAKE) -C lib

examples: lib
	$(MAKE) -C examples

build:
	mkdir -p build

lint: | build

vm-run: modules
	$(VM_RUN) -- '$(CMD)'

# Suites: NAME=COMMAND, each ending its output with "N passed, N failed".
HOST_SUITES ?=
VM_SUITES ?= kselftests=selftests/run.sh

check: deps
	$(MAKE) check-build
	$(MAKE) lint
	$(MAKE) check-run

check-build: modules selftests

# The rig's own checks (dmesg clean, rmmod, nothing left allocated) count as
# one more test; the grand total is the last line.
check-run: | build
	@rm -f build/check.log; rc=0; \
	if [ -n "$(strip $(HOST_SUITES))" ]; then \
		tools/run-suites --log build/check.log $(HOST_SUITES) || rc=1; \
	fi; \
	if $(VM_RUN) -- 'tools/run-suites --log build/check.log $(VM_SUITES)'; then \
		echo "suite vm-checks: 1 passed, 0 failed" >>build/check.log; \
	else \
		rc=1; echo "suite vm-checks: 0 passed, 1 failed" >>build/check.log; \
	fi; \
	echo "# ==== make check ($(KVER))"; \
	cat build/check.log; \
	tools/run-suites --total build/check.log || rc=1; \
	exit $$rc

build/grow_demo: examples/grow_demo.c uapi/linux/shmk.h | build
	$(CC) -O2 -g -Wall -Wextra -Werror -Iuapi -o $@ $<

demo: deps
	$(MAKE) modules build/grow_demo
	$(VM_RUN) -- 'build/grow_demo'

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

clean:
	-$(MAKE) -C $(KDIR) M=$(PROJECT) clean
	-$(MAKE) -C bench clean
	-$(MAKE) -C selftests clean
	rm -rf build
