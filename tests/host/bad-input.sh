# Bad input stops the build with one clear message naming the cause and
# leaves nothing that a later run would trust: a sha256 mismatch, an
# unreachable mirror, a patch that no longer applies, a missing prerequisite.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
expect() { # NAME PATTERN CMD...: CMD fails and its stderr matches PATTERN
	local name=$1 pat=$2
	shift 2
	if "$@" >"$tmp/out" 2>&1; then
		echo "not ok - $name: succeeded"
		fail=1
	elif grep -qE "$pat" "$tmp/out"; then
		echo "ok - $name: $(grep -E "$pat" "$tmp/out" | head -n1)"
	else
		echo "not ok - $name: message does not match '$pat':"
		cat "$tmp/out"
		fail=1
	fi
}

# A corrupted download in a private cache is refused by its digest.
. "$top/versions.env"
mkdir -p "$tmp/cache/downloads"
for f in "$LINUX_SOURCE_DEB" "$RDMA_CORE_TARBALL" "$PERFTEST_TARBALL"; do
	echo corrupt >"$tmp/cache/downloads/$f"
done
expect "sha256 mismatch" "sha256 mismatch for $LINUX_SOURCE_PKG" \
	env RDMA_P2P_CACHE="$tmp/cache" "$top/scripts/fetch-sources"

# An empty cache and a mirror nobody serves: a clear error, and no
# half-downloaded file left behind.
expect "unreachable mirror" "cannot reach the Debian mirror" \
	env RDMA_P2P_CACHE="$tmp/cache2" RDMA_P2P_MIRROR=http://127.0.0.1:9/nothing-listens-here \
	"$top/scripts/fetch-sources"
if [ -n "$(ls -A "$tmp/cache2/downloads" 2>/dev/null)" ]; then
	echo "not ok - unreachable mirror left files: $(ls "$tmp/cache2/downloads")"
	fail=1
fi

# A series naming a patch that does not apply to the pristine tree.
mkdir -p "$tmp/repo"
cp -a "$top/scripts" "$top/versions.env" "$tmp/repo/"
mkdir -p "$tmp/repo/bench/perftest/patches"
cat >"$tmp/repo/bench/perftest/patches/0001-broken.patch" <<'P'
--- a/README
+++ b/README
@@ -1,3 +1,3 @@
-this line is not in perftest's README
+and so the patch cannot apply
 nor this
 nor that
P
echo 0001-broken.patch >"$tmp/repo/bench/perftest/patches/series"
expect "patch no longer applies" "patch 0001-broken.patch no longer applies" \
	"$tmp/repo/scripts/prepare-tree" perftest "$tmp/tree"
if [ -e "$tmp/tree" ]; then
	echo "not ok - a failed prepare-tree left $tmp/tree behind"
	fail=1
fi

# A missing prerequisite is named: a PATH with every tool but qemu.
mkdir -p "$tmp/bin"
for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
	for x in "$d"/*; do
		case $x in */qemu-system-*) continue ;; esac
		[ -e "$tmp/bin/${x##*/}" ] || ln -s "$x" "$tmp/bin/${x##*/}"
	done
done
echo true >"$tmp/t.sh"
expect "missing prerequisite" "missing prerequisite 'qemu-system-x86_64'" \
	env PATH="$tmp/bin" bash "$top/tests/vm/run" "$tmp/t.sh"
exit $fail
