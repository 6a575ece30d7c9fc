#!/bin/bash
# vm-options: --timeout 500
# An rxe doorbell page exported through rdma-core's ibv_cmd_export_dmabuf_fd()
# by the core's p2p default (no rxe dma-buf op), imported by the
# p2p_mmap_test module and revoked by closing the context; no PROT_EXEC.
# Then the export in vivid (vb2-vmalloc: a vmap without attachment) and vgem
# (PRIME import): the exporter's exit and SIGKILL, `rdma link delete` and
# unloading rdma_rxe must each finish while they hold it, with a clean log.
set -u
. "$RDMAP_SRC/tests/vm/lib.sh"

bin=$RDMAP_BUILD/tests/bin/p2p_rxe_export
fail=0
insmod "$RDMAP_MODULES/tests/p2p_mmap_test.ko" || { echo "insmod failed"; exit 1; }
modprobe vivid n_devs=1 node_types=0x1 || { echo "modprobe vivid failed"; exit 1; }
modprobe vgem || { echo "modprobe vgem failed"; exit 1; }
rdmap_bounded 300 "$bin"
rc=$?
[ $rc = 0 ] || { echo "p2p_rxe_export failed ($rc)"; fail=1; }
rmmod p2p_mmap_test || { echo "rmmod p2p_mmap_test failed"; fail=1; }

ktap=$(dmesg | sed -e 's/^\[[^]]*\] //' |
	sed -n '/^TAP version 13$/,$p' | grep -E '^(not ok|ok|1\.\.|#)')
echo "$ktap"
if echo "$ktap" | grep -q '^not ok'; then
	echo "KTAP failures above"
	fail=1
fi

# hold_then WHAT CMD...: a process holds its export in vivid and vgem while
# CMD revokes it; CMD must return. The holder is killed afterwards.
hold_then() {
	local what=$1 holder rc
	shift
	"$bin" hold >/tmp/hold.out 2>&1 &
	holder=$!
	if ! rdmap_wait_held /tmp/hold.out; then
		rdmap_fail "$what: the holder did not start"
		kill -9 "$holder"
		return 1
	fi
	rdmap_bounded 120 "$@"
	rc=$?
	kill -9 "$holder"
	wait "$holder" 2>/dev/null
	if [ $rc = 124 ]; then
		rdmap_fail "$what did not finish while vivid held the export"
		return 1
	fi
	rdmap_ok "$what finished while vivid and vgem held the export (status $rc)"
}

hold_then "rdma link delete rxe0" rdma link delete rxe0 || fail=1
rdma link add rxe0 type rxe netdev dummy0 || { echo "re-adding rxe0 failed"; fail=1; }
# rmmod may be refused while the holder's context is open (status 1): that
# is clean too; it must not hang.
hold_then "rmmod rdma_rxe" rmmod rdma_rxe || fail=1
exit $fail
