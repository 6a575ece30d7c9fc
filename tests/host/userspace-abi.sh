# rdma-core's copy of the rxe uapi header (userspace/patches, "Update kernel
# headers") says what the kernel series says (kernel/patches 0020): both
# patched trees, as the builds laid them out, hold the same file.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${RDMA_P2P_BUILD:-$top/build}
k=$build/kernel/tree/include/uapi/rdma/rdma_user_rxe.h
u=$build/rdma-core/src/kernel-headers/rdma/rdma_user_rxe.h
for f in "$k" "$u"; do
	[ -f "$f" ] || { echo "not ok - $f missing: build first"; exit 1; }
done
if diff -u "$k" "$u"; then
	echo "ok - rdma_user_rxe.h: rdma-core's copy matches the kernel's"
else
	echo "not ok - rdma_user_rxe.h differs between the kernel and rdma-core series"
	exit 1
fi
