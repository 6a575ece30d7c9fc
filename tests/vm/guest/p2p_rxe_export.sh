#!/bin/bash
# vm-options: --timeout 400
# An rxe doorbell page exported through rdma-core's ibv_cmd_export_dmabuf_fd()
# by the core's p2p default (no rxe dma-buf op), imported by the
# p2p_mmap_test module and revoked by closing the context.
set -u
. "$RDMAP_SRC/tests/vm/lib.sh"

fail=0
insmod "$RDMAP_MODULES/tests/p2p_mmap_test.ko" || { echo "insmod failed"; exit 1; }
"$RDMAP_BUILD/tests/bin/p2p_rxe_export" || fail=1
rmmod p2p_mmap_test || { echo "rmmod p2p_mmap_test failed"; fail=1; }

ktap=$(dmesg | sed -e 's/^\[[^]]*\] //' |
	sed -n '/^TAP version 13$/,$p' | grep -E '^(not ok|ok|1\.\.|#)')
echo "$ktap"
if echo "$ktap" | grep -q '^not ok'; then
	echo "KTAP failures above"
	fail=1
fi
exit $fail
