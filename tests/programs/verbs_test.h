/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * libibverbs helpers for the test programs: open a device with a PD, a
 * buffer and its MR; create a QP, plain or through ibv_peer_create_qp(),
 * and connect it to a second QP on the same device (RC loopback); post
 * RDMA WRITEs with ibv_post_send(); collect completions. Everything goes
 * through the real provider.
 */
#ifndef VERBS_TEST_H
#define VERBS_TEST_H

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <infiniband/verbs.h>
#include <infiniband/peer_db.h>

#define die(...) do { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

/* vt_qp_create(): a QP made by ibv_create_qp(), not ibv_peer_create_qp() */
#define VT_PLAIN_QP	(-1)

struct vt_dev {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	int gid_index;
	union ibv_gid gid;
	char *buf;		/* local and remote buffers, one MR */
	size_t buf_size;
	struct ibv_mr *mr;
};

struct vt_qp {
	struct vt_dev *d;
	struct ibv_qp *qp;
	struct ibv_cq *cq;
	struct ibv_qp *peer;	/* the other end, with its own CQ */
	struct ibv_cq *peer_cq;
};

static inline double vt_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static inline void vt_dev_open(struct vt_dev *d, const char *name)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	struct ibv_port_attr pattr;
	int i;

	memset(d, 0, sizeof(*d));
	if (!list)
		die("no device list");
	for (i = 0; list[i]; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name))
			break;
	if (!list[i])
		die("no device %s", name);
	d->ctx = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	if (!d->ctx)
		die("open %s: %s", name, strerror(errno));
	d->pd = ibv_alloc_pd(d->ctx);
	if (!d->pd)
		die("alloc pd");
	if (ibv_query_port(d->ctx, 1, &pattr))
		die("query port");
	d->gid_index = -1;
	for (i = 0; i < pattr.gid_tbl_len && i < 16; i++) {
		union ibv_gid g;

		if (ibv_query_gid(d->ctx, 1, i, &g))
			continue;
		/* an IPv4 mapped RoCEv2 GID: ::ffff:a.b.c.d */
		if (!g.raw[0] && !g.raw[8] && g.raw[10] == 0xff && g.raw[11] == 0xff) {
			d->gid_index = i;
			d->gid = g;
			break;
		}
	}
	/* none on iWARP (siw): such a device only makes QPs, never connects */
	d->buf_size = 1 << 20;
	d->buf = aligned_alloc(4096, d->buf_size);
	if (!d->buf)
		die("buffer");
	memset(d->buf, 0, d->buf_size);
	d->mr = ibv_reg_mr(d->pd, d->buf, d->buf_size, IBV_ACCESS_LOCAL_WRITE |
			   IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
	if (!d->mr)
		die("reg mr: %s", strerror(errno));
}

static inline void vt_dev_close(struct vt_dev *d)
{
	ibv_dereg_mr(d->mr);
	ibv_dealloc_pd(d->pd);
	ibv_close_device(d->ctx);
	free(d->buf);
}

/*
 * Create the QP under test with its own CQ. peer_flags: enum
 * ibv_peer_qp_flags for ibv_peer_create_qp(), or VT_PLAIN_QP.
 * Returns 0 or an errno; the send ops of ibv_wr_*() are enabled, except
 * on a CPU-proxy QP (IBV_PEER_QP_PROXY).
 */
static inline int vt_qp_create(struct vt_dev *d, struct vt_qp *q,
			       int peer_flags, uint32_t depth)
{
	struct ibv_qp_init_attr_ex ia = {
		.cap = { .max_send_wr = depth, .max_recv_wr = 1,
			 .max_send_sge = 2, .max_recv_sge = 1,
			 .max_inline_data = 64 },
		.qp_type = IBV_QPT_RC,
		.comp_mask = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_SEND_OPS_FLAGS,
		.pd = d->pd,
		.send_ops_flags = IBV_QP_EX_WITH_RDMA_WRITE | IBV_QP_EX_WITH_SEND,
	};
	struct ibv_peer_qp_init_attr pa = {};

	memset(q, 0, sizeof(*q));
	q->d = d;
	q->cq = ibv_create_cq(d->ctx, 2 * depth + 16, NULL, NULL, 0);
	if (!q->cq)
		die("create cq: %s", strerror(errno));
	ia.send_cq = ia.recv_cq = q->cq;
	if (peer_flags == VT_PLAIN_QP) {
		q->qp = ibv_create_qp_ex(d->ctx, &ia);
	} else {
		/* the CPU proxy stages ibv_post_send() only, not ibv_wr_*() */
		if (peer_flags & IBV_PEER_QP_PROXY)
			ia.comp_mask &= ~IBV_QP_INIT_ATTR_SEND_OPS_FLAGS;
		pa.flags = peer_flags;
		q->qp = ibv_peer_create_qp(d->ctx, &ia, &pa, sizeof(pa));
	}
	if (!q->qp) {
		int err = errno;

		ibv_destroy_cq(q->cq);
		q->cq = NULL;
		return err;
	}
	return 0;
}

static inline void vt_modify(struct ibv_qp *qp, uint32_t dest_qpn,
			     struct vt_dev *d)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.port_num = 1,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
				   IBV_ACCESS_LOCAL_WRITE,
	};

	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			  IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
		die("qp %u to INIT: %s", qp->qp_num, strerror(errno));
	if (d->gid_index < 0)
		die("no IPv4 GID to connect qp %u with", qp->qp_num);
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_1024;
	a.dest_qp_num = dest_qpn;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 12;
	a.ah_attr.is_global = 1;
	a.ah_attr.grh.dgid = d->gid;
	a.ah_attr.grh.sgid_index = d->gid_index;
	a.ah_attr.grh.hop_limit = 1;
	a.ah_attr.port_num = 1;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
			  IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
			  IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
		die("qp %u to RTR: %s", qp->qp_num, strerror(errno));
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.max_rd_atomic = 1;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
			  IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC))
		die("qp %u to RTS: %s", qp->qp_num, strerror(errno));
}

/* Connect the QP under test to a new QP on the same device. */
static inline void vt_qp_connect(struct vt_qp *q)
{
	struct ibv_qp_init_attr ia = {
		.cap = { .max_send_wr = 1, .max_recv_wr = 16,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.qp_type = IBV_QPT_RC,
	};

	q->peer_cq = ibv_create_cq(q->d->ctx, 64, NULL, NULL, 0);
	if (!q->peer_cq)
		die("peer cq");
	ia.send_cq = ia.recv_cq = q->peer_cq;
	q->peer = ibv_create_qp(q->d->pd, &ia);
	if (!q->peer)
		die("peer qp: %s", strerror(errno));
	vt_modify(q->peer, q->qp->qp_num, q->d);
	vt_modify(q->qp, q->peer->qp_num, q->d);
}

static inline void vt_qp_destroy(struct vt_qp *q)
{
	if (q->qp && ibv_destroy_qp(q->qp))
		die("destroy qp: %s", strerror(errno));
	if (q->peer && ibv_destroy_qp(q->peer))
		die("destroy peer qp: %s", strerror(errno));
	if (q->cq)
		ibv_destroy_cq(q->cq);
	if (q->peer_cq)
		ibv_destroy_cq(q->peer_cq);
	memset(q, 0, sizeof(*q));
}

/* The ibv_send_wr of an RDMA WRITE of len bytes, offsets in d->buf. */
static inline void vt_write_wr(struct vt_qp *q, struct ibv_send_wr *wr,
			       struct ibv_sge *sge, uint64_t wr_id,
			       size_t src, size_t dst, uint32_t len)
{
	struct vt_dev *d = q->d;

	memset(wr, 0, sizeof(*wr));
	sge->addr = (uintptr_t)d->buf + src;
	sge->length = len;
	sge->lkey = d->mr->lkey;
	wr->wr_id = wr_id;
	wr->sg_list = sge;
	wr->num_sge = 1;
	wr->opcode = IBV_WR_RDMA_WRITE;
	wr->send_flags = IBV_SEND_SIGNALED;
	wr->wr.rdma.remote_addr = (uintptr_t)d->buf + dst;
	wr->wr.rdma.rkey = d->mr->rkey;
}

static inline int vt_post_write(struct vt_qp *q, uint64_t wr_id, size_t src,
				size_t dst, uint32_t len)
{
	struct ibv_send_wr wr, *bad;
	struct ibv_sge sge;

	vt_write_wr(q, &wr, &sge, wr_id, src, dst, len);
	return ibv_post_send(q->qp, &wr, &bad);
}

/*
 * The mmap offset of the page holding addr, from /proc/self/maps, and with
 * len the bytes of its mapping from there on: what a test needs to forge a
 * mapping or an export the library would never make.
 */
static inline uint64_t vt_mapping(const void *addr, size_t *len)
{
	uintptr_t a = (uintptr_t)addr, lo, hi;
	long page_size = sysconf(_SC_PAGESIZE);
	unsigned long long off;
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		die("maps");
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %*s %llx", &lo, &hi,
			   &off) != 3)
			continue;
		if (a >= lo && a < hi) {
			fclose(f);
			a &= ~((uintptr_t)page_size - 1);
			if (len)
				*len = hi - a;
			return off + (a - lo);
		}
	}
	die("no mapping holds %p", addr);
}

static inline uint64_t vt_mmap_offset(const void *addr)
{
	return vt_mapping(addr, NULL);
}

/*
 * Wait for n completions on cq; returns how many came within timeout_ms.
 * Any error status fails the program unless last is given, which then
 * holds the last completion.
 */
static inline int vt_wait_cq(struct ibv_cq *cq, int n, int timeout_ms,
			     struct ibv_wc *last)
{
	double end = vt_now_us() + timeout_ms * 1000.0;
	struct ibv_wc wc[16];
	int got = 0, k, i;

	while (got < n) {
		k = ibv_poll_cq(cq, n - got < 16 ? n - got : 16, wc);
		if (k < 0)
			die("poll cq");
		for (i = 0; i < k; i++) {
			if (last)
				*last = wc[i];
			if (wc[i].status != IBV_WC_SUCCESS && !last)
				die("completion wr_id %llu status %s",
				    (unsigned long long)wc[i].wr_id,
				    ibv_wc_status_str(wc[i].status));
		}
		got += k;
		if (!k && vt_now_us() > end)
			break;
	}
	return got;
}

#endif /* VERBS_TEST_H */
