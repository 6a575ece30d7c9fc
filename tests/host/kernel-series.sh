# The kernel series exports against pristine 7.3.4 and checkpatch --strict,
# kernel-doc -Wall (new warnings) and a W=1 compile of its C files find
# nothing in it (scripts/export-kernel-series exits non-zero if they do).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
if out=$("$top/scripts/export-kernel-series" 2>&1); then
	echo "$out"
	echo "ok - kernel series exported, checkpatch --strict, kernel-doc -Wall and W=1 clean"
else
	echo "$out"
	echo "not ok - kernel series export, checkpatch, kernel-doc or W=1 failed"
	exit 1
fi
