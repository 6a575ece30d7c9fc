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

# Names are stable: a patch whose subject stays keeps its file (and is not
# rewritten when unchanged); a new patch is numbered after its predecessor.
pdir=$tmp/repo/bench/perftest/patches
mv "$pdir/0001-perftest-Mark-README.patch" "$pdir/0010-perftest-Mark-README.patch"
sed -i 's/^0001-/0010-/' "$series"
cp "$pdir/0010-perftest-Mark-README.patch" "$tmp/first.patch"
echo "second edit" >>"$tmp/git2/README"
g "$tmp/git2" commit -q -am "perftest: Second edit" || fail "commit (second)"
"$tmp/repo/scripts/patches" regenerate perftest "$tmp/git2" || fail "regenerate (second)"
[ "$(awk '{ print $1 }' "$series" | tr '\n' ' ')" = "0010-perftest-Mark-README.patch 0011-perftest-Second-edit.patch " ] ||
	fail "names not stable: $(cat "$series")"
cmp -s "$tmp/first.patch" "$pdir/0010-perftest-Mark-README.patch" || fail "an unchanged patch was rewritten"
[ ! -e "$pdir/0001-perftest-Mark-README.patch" ] || fail "a stale patch file was left"
echo "ok - regenerate keeps patch names and numbers new patches after their predecessor"
