# shellcheck shell=bash
# Common helpers for the build and test scripts. Source it; do not run it.

set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../versions.env
. "$TOP/versions.env"

# Downloads and the sysroot live outside the build tree so that a fresh
# build directory (or a fresh clone) rebuilds offline.
CACHE_DIR=${RDMA_P2P_CACHE:-/var/cache/rdma-p2p-doorbell}
DL_DIR=$CACHE_DIR/downloads
BUILD_DIR=${RDMA_P2P_BUILD:-$TOP/build}

die() {
	echo "error: $*" >&2
	exit 1
}

note() {
	echo "==> $*" >&2
}

need_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 ||
			die "missing prerequisite '$c' (run scripts/install-prereqs as root)"
	done
}

# The Debian mirror: $RDMA_P2P_MIRROR, else the first non-security Debian
# archive URI in the host's apt configuration.
debian_mirror() {
	if [ -n "${RDMA_P2P_MIRROR:-}" ]; then
		echo "$RDMA_P2P_MIRROR"
		return
	fi
	local uri
	uri=$( (grep -hE '^[[:space:]]*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
		sed -E 's/^[[:space:]]*URIs:[[:space:]]*//' | tr ' ' '\n'
		grep -hE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		sed -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//; s/[[:space:]].*//') |
		grep -E '^(https?|file)://' | grep -E '/debian/?$' | head -n1)
	[ -n "$uri" ] ||
		die "no Debian mirror in the host's apt configuration; set RDMA_P2P_MIRROR to a Debian archive URI"
	echo "${uri%/}"
}

sha256_of() {
	sha256sum "$1" | cut -d' ' -f1
}

# verify_sha256 FILE EXPECTED: refuse a file whose digest differs from the pin.
verify_sha256() {
	local file=$1 want=$2 got
	got=$(sha256_of "$file")
	if [ -z "$want" ]; then
		die "no sha256 pinned for $(basename "$file") in versions.env (it is $got)"
	fi
	if [ "$got" != "$want" ]; then
		# Set it aside, so that the next run downloads it again instead of
		# trusting it.
		mv -f "$file" "$file.rejected"
		die "sha256 mismatch for $(basename "$file"): expected $want, got $got (moved to $(basename "$file").rejected)"
	fi
}

# A content hash of the pins and the sysroot recipe: the sysroot is rebuilt
# only when it changes.
sysroot_key() {
	cat "$TOP/versions.env" "$TOP/scripts/sysroot-packages" "$TOP/scripts/make-sysroot" |
		sha256sum | cut -c1-16
}

SYSROOT=$CACHE_DIR/sysroot-$(sysroot_key 2>/dev/null || echo none)

# run_in_sysroot BIND... -- CMD...: run CMD inside the sysroot, in a private
# mount namespace. A BIND is DIR (bind-mounted at the same path inside) or
# SRC:DST.
run_in_sysroot() {
	local binds=()
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do
		binds+=("$1")
		shift
	done
	[ "${1:-}" = "--" ] && shift
	[ -d "$SYSROOT/usr" ] || die "sysroot $SYSROOT missing (build the 'sysroot' target)"
	unshare -m --propagation private bash -eu -c '
		root=$1; shift
		nb=$1; shift
		mount -t proc proc "$root/proc"
		mount --rbind /dev "$root/dev"
		mount -t tmpfs tmpfs "$root/tmp"
		for ((i = 0; i < nb; i++)); do
			src=${1%%:*} dst=${1#*:}
			mkdir -p "$root$dst"
			mount --bind "$src" "$root$dst"
			shift
		done
		exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
			HOME=/root LANG=C.UTF-8 TERM=dumb "$@"
	' run_in_sysroot "$SYSROOT" "${#binds[@]}" "${binds[@]}" "$@"
}
