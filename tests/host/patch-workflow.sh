# scripts/patches round trip on a scratch copy of the repository: materialize
# perftest as git (pristine + series), commit an edit, regenerate the series,
# and find the edit in a prepared tree and in a fresh materialization.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/repo"
cp -a "$top/scripts" "$top/versions.env" "$tmp/repo/"
export RDMA_P2P_BUILD=$tmp/build
fail() {
	echo "not ok - $*"
	exit 1
}
g() { git -C "$1" -c user.name=t -c user.email=t@t.invalid "${@:2}"; }

"$tmp/repo/scripts/patches" materialize perftest "$tmp/git1" || fail "materialize (empty series)"
[ "$(g "$tmp/git1" rev-list --count pristine..HEAD)" = 0 ] || fail "empty series gave commits"
echo "patched by the workflow test" >>"$tmp/git1/README"
g "$tmp/git1" commit -q -am "perftest: Mark README" -m "A test edit." || fail "commit"
"$tmp/repo/scripts/patches" regenerate perftest "$tmp/git1" || fail "regenerate"
series=$tmp/repo/bench/perftest/patches/series
[ "$(grep -c . "$series")" = 1 ] || fail "series does not list one patch: $(cat "$series")"
grep -q '^0001-perftest-Mark-README.patch$' "$series" || fail "unexpected series: $(cat "$series")"
"$tmp/repo/scripts/prepare-tree" perftest "$tmp/tree" || fail "prepare-tree with the new series"
grep -q "patched by the workflow test" "$tmp/tree/README" || fail "the prepared tree lacks the edit"
"$tmp/repo/scripts/patches" materialize perftest "$tmp/git2" || fail "materialize (one patch)"
[ "$(g "$tmp/git2" log -1 --format=%s)" = "perftest: Mark README" ] || fail "materialized HEAD is not the patch"
echo "ok - materialize, edit, regenerate, prepare-tree, materialize again"
