# tests/vm/scan-kernel-log finds each kind of kernel report and nothing in
# a clean log.
set -u
scan=$(dirname "$0")/../vm/scan-kernel-log
fail=0
check() { # EXPECT(found|clean) LINE
	local got
	got=$(printf '[    1.000000] ok line\n%s\n' "$2" | "$scan" /dev/stdin)
	if { [ "$1" = found ] && [ -n "$got" ]; } || { [ "$1" = clean ] && [ -z "$got" ]; }; then
		echo "ok - $1: $2"
	else
		echo "not ok - expected $1: $2 (got '$got')"
		fail=1
	fi
}
check found '[   12.3] kernel BUG at drivers/infiniband/sw/rxe/rxe_qp.c:42!'
check found '[   12.3] WARNING: CPU: 1 PID: 77 at drivers/infiniband/core/device.c:10 f+0x1/0x2 [ib_core]'
check found '[   12.3] Oops: general protection fault, probably for non-canonical address'
check found '[   12.3] BUG: KFENCE: use-after-free read in rxe_poll_cq+0x1/0x2'
check found '[   12.3] UBSAN: array-index-out-of-bounds in drivers/infiniband/sw/rxe/rxe_req.c:1:2'
check found '[   12.3] BUG kmalloc-64 (Tainted: G  OE): Poison overwritten'
check found '[   12.3] INFO: task rdma:123 blocked for more than 60 seconds.'
check found '[   12.3] watchdog: BUG: soft lockup - CPU#0 stuck for 22s!'
check found '[   12.3] list_del corruption. next->prev should be ffff, but was dead'
check found '[   12.3] refcount_t: underflow; use-after-free.'
check found '[   12.3] pagealloc: memory corruption'
check found '[   12.3] modprobe-guard: refused to load Debian'"'"'s ib_core next to ours'
check found '[   12.3] DMAR: DRHD: handling fault status reg 2'
check found '[   12.3] DMAR: [DMA Write NO_PASID] Request device [03:00.0] fault addr 0xffe000 [fault reason 0x05] PTE Write access is not set'
check clean '[    0.4] kfence: initialized - using 2097152 bytes for 255 objects'
check clean '[    5.1] rdma_rxe: loading out-of-tree module taints kernel.'
check clean '[    5.2] rdma_rxe: module verification failed: signature and/or required key missing - tainting kernel'

# --allow: a matching report is allowed inside the rdmap-expect window only.
allow() { # EXPECT(found|clean) LOG
	local got
	got=$(printf '%b' "$2" | "$scan" --allow 'DMAR: (DRHD: handling fault|\[DMA Write)' /dev/stdin)
	if { [ "$1" = found ] && [ -n "$got" ]; } || { [ "$1" = clean ] && [ -z "$got" ]; }; then
		echo "ok - --allow, $1: $2"
	else
		echo "not ok - --allow, expected $1: $2 (got '$got')"
		fail=1
	fi
}
fault='[ 9.1] DMAR: [DMA Write NO_PASID] Request device [03:00.0] fault addr 0x1000'
allow clean "[ 9.0] rdmap-expect: begin late DMA\n$fault\n[ 9.2] rdmap-expect: end late DMA\n"
allow found "$fault\n[ 9.0] rdmap-expect: begin late DMA\n[ 9.2] rdmap-expect: end\n"
allow found "[ 9.0] rdmap-expect: begin\n[ 9.2] rdmap-expect: end\n$fault\n"
allow found "[ 9.0] rdmap-expect: begin\n[ 9.1] WARNING: CPU: 0 PID: 1 at x.c:1 f+0x0/0x1\n[ 9.2] rdmap-expect: end\n"
exit $fail
