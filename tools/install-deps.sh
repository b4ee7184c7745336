#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Install what shmk needs to build, test and benchmark, on Debian 12 (bookworm).
#
# Usage: sudo tools/install-deps.sh
#
# Idempotent: installs only the packages that are missing (apt-get update runs
# only when something has to be installed), extracts the kernel source tree to
# /usr/src/linux-source-6.1 when it is not there yet, and installs the matching
# linux-image-<ver> for every installed linux-headers-<ver> whose
# /boot/vmlinuz-<ver> is missing (tools/vm/run boots those kernels).
# Prints one line per action; exits non-zero with a message on failure.
set -euo pipefail

PACKAGES=(
	build-essential
	gcc-multilib
	qemu-system-x86
	linux-image-amd64
	linux-headers-amd64
	busybox-static
	linux-source-6.1
	sparse
	kmod
	cpio
	xz-utils
	e2fsprogs
	gnuplot-nox
	libnl-3-dev
	libnl-genl-3-dev
	pkg-config
	libboost-dev
	libiceoryx-posh-dev
	iceoryx
	python3
	valgrind
	util-linux
	dkms
	dh-dkms
	debhelper
	lintian
	git
	# make fuzz-trinity (a blind second fuzzer) and make coverage (lcov,
	# genhtml).
	trinity
	lcov
)
SRC_TAR=/usr/src/linux-source-6.1.tar.xz
SRC_DIR=/usr/src/linux-source-6.1

export DEBIAN_FRONTEND=noninteractive

say() { printf 'install-deps: %s\n' "$*"; }
die() { printf 'install-deps: error: %s\n' "$*" >&2; exit 1; }

if [[ $EUID -ne 0 ]]; then
	die "must run as root (try: sudo $0)"
fi
if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
	die "dpkg-query/apt-get not found: this script is for Debian 12"
fi

installed() {
	[[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

updated=0
apt_install() {
	if [[ $updated -eq 0 ]]; then
		say "running apt-get update"
		apt-get -o DPkg::Lock::Timeout=600 update -qq || die "apt-get update failed"
		updated=1
	fi
	say "installing: $*"
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" ||
		die "apt-get install $* failed"
}

# 1. Packages.
missing=()
for p in "${PACKAGES[@]}"; do
	installed "$p" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
	apt_install "${missing[@]}"
else
	say "all ${#PACKAGES[@]} packages already installed"
fi

# 2. A kernel image for every installed set of Debian kernel headers.
mapfile -t header_pkgs < <(dpkg-query -W -f='${Package} ${Status}\n' 'linux-headers-*' 2>/dev/null |
	awk '$NF == "installed" && $1 ~ /^linux-headers-[0-9].*-amd64$/ { print $1 }')
images=()
for hp in "${header_pkgs[@]}"; do
	ver=${hp#linux-headers-}
	if [[ -e /boot/vmlinuz-$ver ]]; then
		continue
	fi
	say "headers for $ver are installed but /boot/vmlinuz-$ver is missing"
	images+=("linux-image-$ver")
done
if [[ ${#images[@]} -gt 0 ]]; then
	apt_install "${images[@]}"
	for img in "${images[@]}"; do
		ver=${img#linux-image-}
		[[ -e /boot/vmlinuz-$ver ]] || die "$img installed but /boot/vmlinuz-$ver is still missing"
	done
else
	say "every installed linux-headers-<ver> has its /boot/vmlinuz-<ver>"
fi

# 3. The extracted kernel source tree (kselftest_harness.h, checkpatch.pl, debug kernel builds).
if [[ -f $SRC_DIR/Makefile && -f $SRC_DIR/tools/testing/selftests/kselftest_harness.h ]]; then
	say "kernel source already extracted at $SRC_DIR"
else
	[[ -f $SRC_TAR ]] || die "$SRC_TAR not found (is linux-source-6.1 installed?)"
	say "extracting $SRC_TAR to $SRC_DIR (about 20 s)"
	tmp=$(mktemp -d /usr/src/.linux-source-extract.XXXXXX)
	trap 'rm -rf "$tmp"' EXIT
	tar -C "$tmp" -xJf "$SRC_TAR" || die "extracting $SRC_TAR failed"
	[[ -f $tmp/linux-source-6.1/Makefile ]] || die "$SRC_TAR does not contain linux-source-6.1/"
	rm -rf "$SRC_DIR"
	mv "$tmp/linux-source-6.1" "$SRC_DIR"
	rm -rf "$tmp"
	trap - EXIT
fi

say "done"
