/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * Raw-uverbs helpers for the rxe doorbell tests: libibverbs and the stock
 * rxe provider open the device and make the PD, CQs, MRs and the peer QP;
 * the QP under test is created, modified, posted to and rung by hand, on
 * the context's command fd, because the provider does not know about
 * doorbell slots yet.
 */
#ifndef RXE_DB_H
#define RXE_DB_H

#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <infiniband/verbs.h>
#include <rdma/ib_user_verbs.h>
#include <rdma/rdma_user_rxe.h>

/* rdma-core's private verb for UVERBS_METHOD_DMABUF_ALLOC (driver.h) */
int ibv_cmd_export_dmabuf_fd(struct ibv_context *ctx, off_t pg_off);

#define die(...) do { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

struct db_dev {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	int gid_index;
	union ibv_gid gid;
	char *buf;		/* local and remote buffers, one MR */
	size_t buf_size;
	struct ibv_mr *mr;
	struct ibv_cq *peer_cq;
};

struct raw_qp {
	struct db_dev *d;
	struct ibv_cq *cq;
	uint32_t handle, qpn;
	struct rxe_queue_buf *sq;
	size_t sq_size;
	uint64_t sq_offset;
	void *rq;
	size_t rq_size;
	uint32_t prod;
	uint32_t max_send_wr;
	/* doorbell */
	int has_db;
	uint64_t db_offset;
	uint32_t db_index;
	uint32_t db_flags;	/* granted RXE_CREATE_QP_* */
	void *db_page;
	volatile struct rxe_db_slot *slot;
	unsigned long kicks;
	/* the QP at the other end, an ordinary libibverbs QP */
	struct ibv_qp *peer;
};

static inline double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static inline int uverbs_write(struct ibv_context *ctx, void *buf, size_t len)
{
	ssize_t n = write(ctx->cmd_fd, buf, len);

	if (n == (ssize_t)len)
		return 0;
	return n < 0 ? errno : EIO;
}

static inline void db_dev_open(struct db_dev *d, const char *name)
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
	if (d->gid_index < 0)
		die("no IPv4 GID on %s", name);
	d->buf_size = 1 << 20;
	d->buf = aligned_alloc(4096, d->buf_size);
	memset(d->buf, 0, d->buf_size);
	d->mr = ibv_reg_mr(d->pd, d->buf, d->buf_size, IBV_ACCESS_LOCAL_WRITE |
			   IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
	if (!d->mr)
		die("reg mr");
	d->peer_cq = ibv_create_cq(d->ctx, 256, NULL, NULL, 0);
	if (!d->peer_cq)
		die("peer cq");
}

static inline void db_dev_close(struct db_dev *d)
{
	ibv_dereg_mr(d->mr);
	ibv_destroy_cq(d->peer_cq);
	ibv_dealloc_pd(d->pd);
	ibv_close_device(d->ctx);
	free(d->buf);
}

/*
 * Create the QP under test. flags: RXE_CREATE_QP_* or -1 for the request
 * an old rdma-core makes (no udata in, the old response size).
 * Returns 0 or an errno.
 */
static inline int raw_qp_create(struct db_dev *d, struct raw_qp *q,
				struct ibv_cq *cq, int flags, uint32_t max_send_wr,
				size_t resp_drv_len)
{
	uint8_t req[sizeof(struct ib_uverbs_cmd_hdr) + sizeof(struct ib_uverbs_create_qp) +
		    sizeof(struct rxe_create_qp_cmd)];
	uint8_t resp[sizeof(struct ib_uverbs_create_qp_resp) + sizeof(struct rxe_create_qp_resp)];
	struct ib_uverbs_cmd_hdr hdr = {};
	struct ib_uverbs_create_qp cmd = {};
	struct rxe_create_qp_cmd drv = {};
	struct ib_uverbs_create_qp_resp cresp;
	struct rxe_create_qp_resp dresp;
	size_t len = sizeof(hdr) + sizeof(cmd);
	int err;

	memset(q, 0, sizeof(*q));
	memset(resp, 0, sizeof(resp));
	q->d = d;
	q->cq = cq;
	cmd.response = (uintptr_t)resp;
	cmd.user_handle = (uintptr_t)q;
	cmd.pd_handle = d->pd->handle;
	cmd.send_cq_handle = cq->handle;
	cmd.recv_cq_handle = cq->handle;
	cmd.max_send_wr = max_send_wr;
	cmd.max_recv_wr = 1;
	cmd.max_send_sge = 1;
	cmd.max_recv_sge = 1;
	cmd.qp_type = IBV_QPT_RC;
	if (flags >= 0) {
		drv.flags = flags;
		len += sizeof(drv);
	}
	hdr.command = IB_USER_VERBS_CMD_CREATE_QP;
	hdr.in_words = len / 4;
	hdr.out_words = (sizeof(cresp) + resp_drv_len) / 4;
	memcpy(req, &hdr, sizeof(hdr));
	memcpy(req + sizeof(hdr), &cmd, sizeof(cmd));
	memcpy(req + sizeof(hdr) + sizeof(cmd), &drv, sizeof(drv));
	err = uverbs_write(d->ctx, req, len);
	if (err)
		return err;
	memcpy(&cresp, resp, sizeof(cresp));
	memset(&dresp, 0, sizeof(dresp));
	memcpy(&dresp, resp + sizeof(cresp), resp_drv_len);
	q->handle = cresp.qp_handle;
	q->qpn = cresp.qpn;
	q->max_send_wr = cresp.max_send_wr;

	q->sq_size = dresp.sq_mi.size;
	q->sq_offset = dresp.sq_mi.offset;
	q->sq = mmap(NULL, q->sq_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		     d->ctx->cmd_fd, q->sq_offset);
	if (q->sq == MAP_FAILED)
		die("mmap sq: %s", strerror(errno));
	q->rq_size = dresp.rq_mi.size;
	q->rq = mmap(NULL, q->rq_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		     d->ctx->cmd_fd, dresp.rq_mi.offset);
	if (q->rq == MAP_FAILED)
		die("mmap rq: %s", strerror(errno));
	q->prod = q->sq->producer_index;

	if (flags > 0) {
		if (!(dresp.db_flags & RXE_CREATE_QP_DOORBELL))
			die("doorbell not granted (flags %#x)", dresp.db_flags);
		q->has_db = 1;
		q->db_offset = dresp.db_offset;
		q->db_index = dresp.db_index;
		q->db_flags = dresp.db_flags;
		q->db_page = mmap(NULL, sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE,
				  MAP_SHARED, d->ctx->cmd_fd, q->db_offset);
		if (q->db_page == MAP_FAILED)
			die("mmap doorbell page at %#llx: %s",
			    (unsigned long long)q->db_offset, strerror(errno));
		q->slot = (struct rxe_db_slot *)q->db_page + q->db_index;
	}
	return 0;
}

static inline int raw_qp_destroy(struct raw_qp *q)
{
	struct {
		struct ib_uverbs_cmd_hdr hdr;
		struct ib_uverbs_destroy_qp cmd;
	} req = {};
	struct ib_uverbs_destroy_qp_resp resp;
	int err;

	req.hdr.command = IB_USER_VERBS_CMD_DESTROY_QP;
	req.hdr.in_words = sizeof(req) / 4;
	req.hdr.out_words = sizeof(resp) / 4;
	req.cmd.response = (uintptr_t)&resp;
	req.cmd.qp_handle = q->handle;
	err = uverbs_write(q->d->ctx, &req, sizeof(req));
	if (err)
		return err;
	munmap(q->sq, q->sq_size);
	munmap(q->rq, q->rq_size);
	if (q->db_page)
		munmap(q->db_page, sysconf(_SC_PAGESIZE));
	if (q->peer)
		ibv_destroy_qp(q->peer);
	return 0;
}

static inline int raw_qp_modify(struct raw_qp *q, struct ib_uverbs_modify_qp *m)
{
	struct {
		struct ib_uverbs_cmd_hdr hdr;
		struct ib_uverbs_modify_qp cmd;
	} req = {};

	req.hdr.command = IB_USER_VERBS_CMD_MODIFY_QP;
	req.hdr.in_words = sizeof(req) / 4;
	req.cmd = *m;
	req.cmd.qp_handle = q->handle;
	return uverbs_write(q->d->ctx, &req, sizeof(req));
}

/* Connect the QP under test to a new libibverbs QP on the same device. */
static inline void raw_qp_connect(struct raw_qp *q)
{
	struct db_dev *d = q->d;
	struct ibv_qp_init_attr ia = {
		.send_cq = d->peer_cq, .recv_cq = d->peer_cq,
		.cap = { .max_send_wr = 1, .max_recv_wr = 1,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.qp_type = IBV_QPT_RC,
	};
	struct ibv_qp_attr a;
	struct ib_uverbs_modify_qp m;
	int access = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
		     IBV_ACCESS_LOCAL_WRITE;

	q->peer = ibv_create_qp(d->pd, &ia);
	if (!q->peer)
		die("peer qp: %s", strerror(errno));

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_INIT;
	a.port_num = 1;
	a.qp_access_flags = access;
	if (ibv_modify_qp(q->peer, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			  IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
		die("peer init");
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_1024;
	a.dest_qp_num = q->qpn;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 12;
	a.ah_attr.is_global = 1;
	a.ah_attr.grh.dgid = d->gid;
	a.ah_attr.grh.sgid_index = d->gid_index;
	a.ah_attr.grh.hop_limit = 1;
	a.ah_attr.port_num = 1;
	if (ibv_modify_qp(q->peer, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
			  IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
			  IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
		die("peer rtr");

	memset(&m, 0, sizeof(m));
	m.attr_mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
		      IBV_QP_ACCESS_FLAGS;
	m.qp_state = IBV_QPS_INIT;
	m.port_num = 1;
	m.qp_access_flags = access;
	if (raw_qp_modify(q, &m))
		die("init: %s", strerror(errno));
	memset(&m, 0, sizeof(m));
	m.attr_mask = IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
		      IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
		      IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER;
	m.qp_state = IBV_QPS_RTR;
	m.path_mtu = IBV_MTU_1024;
	m.dest_qp_num = q->peer->qp_num;
	m.max_dest_rd_atomic = 1;
	m.min_rnr_timer = 12;
	memcpy(m.dest.dgid, d->gid.raw, 16);
	m.dest.is_global = 1;
	m.dest.sgid_index = d->gid_index;
	m.dest.hop_limit = 1;
	m.dest.port_num = 1;
	if (raw_qp_modify(q, &m))
		die("rtr: %s", strerror(errno));
	memset(&m, 0, sizeof(m));
	m.attr_mask = IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
		      IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC;
	m.qp_state = IBV_QPS_RTS;
	m.timeout = 14;
	m.retry_cnt = 7;
	m.rnr_retry = 7;
	m.max_rd_atomic = 1;
	if (raw_qp_modify(q, &m))
		die("rts: %s", strerror(errno));
}

/* Back from the error state: RESET, then connected again to a new peer QP. */
static inline void raw_qp_reset_connect(struct raw_qp *q)
{
	struct ib_uverbs_modify_qp m = {
		.attr_mask = IBV_QP_STATE,
		.qp_state = IBV_QPS_RESET,
	};

	if (raw_qp_modify(q, &m))
		die("qp %u: modify to RESET: %s", q->qpn, strerror(errno));
	ibv_destroy_qp(q->peer);
	q->peer = NULL;
	raw_qp_connect(q);
}

/* Write a signaled RDMA WRITE WQE of len bytes from src to dst (offsets in d->buf). */
static inline void raw_qp_post_write(struct raw_qp *q, uint64_t wr_id,
				     size_t src, size_t dst, uint32_t len)
{
	struct db_dev *d = q->d;
	struct rxe_send_wqe *wqe;

	wqe = (void *)(q->sq->data + ((size_t)q->prod << q->sq->log2_elem_size));
	memset(wqe, 0, sizeof(*wqe) + sizeof(struct rxe_sge));
	wqe->wr.wr_id = wr_id;
	wqe->wr.opcode = IBV_WR_RDMA_WRITE;
	wqe->wr.send_flags = IBV_SEND_SIGNALED;
	wqe->wr.wr.rdma.remote_addr = (uintptr_t)d->buf + dst;
	wqe->wr.wr.rdma.rkey = d->mr->rkey;
	wqe->dma.sge[0].addr = (uintptr_t)d->buf + src;
	wqe->dma.sge[0].length = len;
	wqe->dma.sge[0].lkey = d->mr->lkey;
	wqe->iova = (uintptr_t)d->buf + dst;
	wqe->dma.length = len;
	wqe->dma.resid = len;
	wqe->dma.num_sge = 1;
	q->prod = (q->prod + 1) & q->sq->index_mask;
	/* the WQE before the index, as the rxe provider does */
	__atomic_store_n(&q->sq->producer_index, q->prod, __ATOMIC_RELEASE);
}

/* The old doorbell: POST_SEND with no work requests. */
static inline void raw_qp_kick(struct raw_qp *q)
{
	struct {
		struct ib_uverbs_cmd_hdr hdr;
		struct ib_uverbs_post_send cmd;
	} req = {};
	struct ib_uverbs_post_send_resp resp;
	int err;

	req.hdr.command = IB_USER_VERBS_CMD_POST_SEND;
	req.hdr.in_words = sizeof(req) / 4;
	req.hdr.out_words = sizeof(resp) / 4;
	req.cmd.response = (uintptr_t)&resp;
	req.cmd.qp_handle = q->handle;
	req.cmd.wqe_size = sizeof(struct ib_uverbs_send_wr);
	err = uverbs_write(q->d->ctx, &req, sizeof(req));
	if (err)
		die("kick qp %u: %s", q->qpn, strerror(err));
	q->kicks++;
}

/* Ring a raw value into the slot, without the need-wakeup check. */
static inline void raw_qp_ring_value(struct raw_qp *q, uint32_t val)
{
	__atomic_store_n(&q->slot->sq_prod, htole32(val), __ATOMIC_RELEASE);
}

/*
 * The ring protocol (struct rxe_db_slot): store the producer index, full
 * barrier, read flags, kick if the engine does not poll this slot.
 */
static inline void raw_qp_ring(struct raw_qp *q)
{
	raw_qp_ring_value(q, q->prod);
	/* pairs with the smp_mb() in rxe_db_disarm() */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (le32toh(__atomic_load_n(&q->slot->flags, __ATOMIC_RELAXED)) &
	    RXE_DB_NEED_WAKEUP)
		raw_qp_kick(q);
}

static inline uint32_t raw_qp_slot_flags(struct raw_qp *q)
{
	return le32toh(__atomic_load_n(&q->slot->flags, __ATOMIC_ACQUIRE));
}

/* Wait for n completions on cq; returns how many came within timeout_ms. */
static inline int wait_cq(struct ibv_cq *cq, int n, int timeout_ms,
			  struct ibv_wc *last)
{
	double end = now_us() + timeout_ms * 1000.0;
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
		if (!k && now_us() > end)
			break;
	}
	return got;
}

#endif /* RXE_DB_H */
