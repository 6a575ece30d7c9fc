# rdma-core's copies of the uapi headers (userspace/patches, "Update kernel
# headers") say what the kernel series says: both patched trees, as the
# builds laid them out, hold the same rdma_user_rxe.h (kernel patch 0020),
# and the same object list and shadow doorbell enums in
# ib_user_ioctl_cmds.h (kernel patch 0013). The rest of ib_user_ioctl_cmds.h
# is rdma-core 65.0's sync of an older kernel and differs from 7.3's.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${RDMA_P2P_BUILD:-$top/build}
kdir=$build/kernel/tree/include/uapi/rdma
udir=$build/rdma-core/src/kernel-headers/rdma
fail=0
for f in rdma_user_rxe.h ib_user_ioctl_cmds.h; do
	for d in "$kdir" "$udir"; do
		[ -f "$d/$f" ] || { echo "not ok - $d/$f missing: build first"; exit 1; }
	done
done
if diff -u "$kdir/rdma_user_rxe.h" "$udir/rdma_user_rxe.h"; then
	echo "ok - rdma_user_rxe.h: rdma-core's copy matches the kernel's"
else
	echo "not ok - rdma_user_rxe.h differs between the kernel and rdma-core series"
	fail=1
fi

# The enums the shadow doorbell needs, each from "enum NAME {" to "};".
ioctl_enums() {
	awk '/^enum (uverbs_default_objects|uverbs_attrs_shadow_db_[a-z_]+|uverbs_methods_shadow_db) \{/ { on = 1 }
		on { print }
		on && /^};/ { on = 0 }' "$1"
}
k=$(ioctl_enums "$kdir/ib_user_ioctl_cmds.h")
u=$(ioctl_enums "$udir/ib_user_ioctl_cmds.h")
if [ "$(printf '%s\n' "$k" | grep -c '^enum')" != 4 ]; then
	echo "not ok - the kernel's ib_user_ioctl_cmds.h lacks the shadow doorbell enums"
	fail=1
elif [ "$k" = "$u" ]; then
	echo "ok - ib_user_ioctl_cmds.h: objects and shadow doorbell enums match"
else
	diff -u <(printf '%s\n' "$k") <(printf '%s\n' "$u")
	echo "not ok - ib_user_ioctl_cmds.h: objects or shadow doorbell enums differ"
	fail=1
fi
exit $fail
