// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * The peer doorbell flow end to end (docs/api.md walks through it):
 * create a QP for a peer, probe, query, export its doorbell, stage sends,
 * hand the doorbell to the peer, the peer rings, the sends complete.
 *
 *   peer_example DEV [N]
 *
 * The peer is the p2p_mmap_test kernel module, standing in for a GPU
 * driver: it imports the dma-buf as a dynamic importer and rings by a
 * store through its mapping. Where the module cannot load (Debian's
 * ib_core, tests/vm/run --stock), the CPU stands in for the peer through
 * an mmap of the dma-buf. The same program runs on a kernel with doorbell
 * pages (the direct path) and on one without (libibverbs' CPU proxy).
 * Exits 0 when the N sends completed, 1 otherwise.
 */
#include <endian.h>
#include <inttypes.h>
#include <sys/mman.h>
#include "verbs_test.h"
#include "p2p_test_tap.h"

static volatile uint32_t *peer_cpu_map;

/* The peer's driver: import the doorbell dma-buf, ring at an offset. */
static int peer_import(int fd, size_t len)
{
	void *map;

	if (!access(P2P_TEST_CTL, W_OK))
		return p2p_test_ctl("attach %d", fd);
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return errno;
	peer_cpu_map = map;
	return 0;
}

static int peer_ring(uint64_t offset, uint32_t value)
{
	if (!peer_cpu_map)
		return p2p_test_ctl("write %d %" PRIu64 " %" PRIx32, IMP_FOREIGN,
				    offset, value);
	__atomic_store_n(peer_cpu_map + offset / 4, htole32(value),
			 __ATOMIC_RELEASE);
	return 0;
}

int main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[2]) : 16;
	struct ibv_peer_qp_init_attr peer_attr = {
		.flags = IBV_PEER_QP_STAGED | IBV_PEER_QP_DEDICATED_DB,
	};
	struct ibv_qp_init_attr_ex attr = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 64, .max_recv_wr = 1,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.comp_mask = IBV_QP_INIT_ATTR_PD,
	};
	struct ibv_peer_db_caps caps;
	struct ibv_peer_sq_attr sq;
	struct ibv_peer_db_dmabuf db;
	struct vt_dev d;
	struct vt_qp q = { .d = &d };
	uint32_t prod;
	int i, ret;

	if (argc < 2 || n < 1 || n > 63) {
		fprintf(stderr, "usage: %s DEV [N, 1..63]\n", argv[0]);
		return 2;
	}
	vt_dev_open(&d, argv[1]);
	q.cq = ibv_create_cq(d.ctx, 128, NULL, NULL, 0);
	if (!q.cq)
		die("create cq");
	attr.pd = d.pd;
	attr.send_cq = attr.recv_cq = q.cq;

	/* 1. A QP whose sends wait for a peer's ring, alone on its doorbell page. */
	q.qp = ibv_peer_create_qp(d.ctx, &attr, &peer_attr, sizeof(peer_attr));
	if (!q.qp)
		die("ibv_peer_create_qp: %s", strerror(errno));
	vt_qp_connect(&q);

	/* 2. Can the peer ring it, and how? */
	ret = ibv_peer_probe_db(q.qp, NULL, &caps, sizeof(caps));
	if (ret)
		die("ibv_peer_probe_db: %s", strerror(ret));
	if (caps.method != IBV_PEER_DB_METHOD_DMABUF &&
	    caps.method != IBV_PEER_DB_METHOD_PROXY)
		die("the peer cannot import the doorbell: %s",
		    ibv_peer_db_reason_str(caps.reason));
	printf("# the peer rings by %s%s%s\n", ibv_peer_db_method_str(caps.method),
	       caps.reason ? ": " : "",
	       caps.reason ? ibv_peer_db_reason_str(caps.reason) : "");

	/* 3. What a ring looks like. */
	ret = ibv_peer_query_sq(q.qp, &sq, sizeof(sq));
	if (ret)
		die("ibv_peer_query_sq: %s", strerror(ret));
	if (sq.db_width != 4 || sq.db_byte_order != IBV_PEER_LITTLE_ENDIAN ||
	    sq.db_value != IBV_PEER_DB_VALUE_PROD_INDEX)
		die("a doorbell this peer does not know how to ring");

	/* 4. The doorbell as a dma-buf that grants this QP and nothing else. */
	ret = ibv_peer_export_db(q.qp, IBV_PEER_EXPORT_EXCLUSIVE, &db, sizeof(db));
	if (ret)
		die("ibv_peer_export_db: %s", strerror(ret));

	/* 5. Stage the sends: posted, not sent. */
	for (i = 0; i < n; i++)
		if (vt_post_write(&q, i, 4096, 65536 + 8 * i, 8))
			die("ibv_post_send");
	prod = *(volatile uint32_t *)sq.prod_index;

	/* 6. Hand the doorbell to the peer; it holds its own reference. */
	ret = peer_import(db.fd, db.length);
	close(db.fd);
	if (ret)
		die("the peer did not import the doorbell: %s", strerror(ret));

	/* 7. The peer rings: the producer index up to which sends go. */
	ret = peer_ring(db.offset, prod);
	if (ret)
		die("the peer's ring failed: %s", strerror(ret));

	/* 8. The sends complete. */
	check(vt_wait_cq(q.cq, n, 10000, NULL) == n,
	      "%d staged sends, rung by the peer, completed", n);

	if (!peer_cpu_map)
		p2p_test_ctl("detach");
	vt_qp_destroy(&q);
	vt_dev_close(&d);
	return failed ? 1 : 0;
}
