# The kernel series exports against pristine 7.3.4 and checkpatch --strict
# finds nothing in it (scripts/export-kernel-series exits non-zero if it does).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
if out=$("$top/scripts/export-kernel-series" 2>&1); then
	echo "$out"
	echo "ok - kernel series exported, checkpatch --strict clean"
else
	echo "$out"
	echo "not ok - kernel series export or checkpatch failed"
	exit 1
fi
