/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * The hand-driven QPs of rxe_db_bench (the engine's figures of issue 8):
 * libibverbs opens the device and makes the PD, CQs, MRs and the QP at
 * the other end; the QP under test is created, modified, posted to and
 * rung by hand on the context's command fd, so that the figures time the
 * kernel's paths alone, without the provider in between. The tests use
 * the real provider instead (db_qp.h) and forge only what it never sends
 * (rxe_db.h).
 */
#ifndef RXE_DB_BENCH_H
#define RXE_DB_BENCH_H

#include "rxe_db.h"

#define now_us vt_now_us
#define wait_cq vt_wait_cq

struct db_dev {
	struct vt_dev v;
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

/* vt_dev_open(), and a CQ for the QPs at the other end */
static inline void db_dev_open(struct db_dev *d, const char *name)
{
	vt_dev_open(&d->v, name);
	if (d->v.gid_index < 0)
		die("no IPv4 GID on %s", name);
	d->peer_cq = ibv_create_cq(d->v.ctx, 256, NULL, NULL, 0);
	if (!d->peer_cq)
		die("peer cq");
}

static inline void db_dev_close(struct db_dev *d)
{
	ibv_destroy_cq(d->peer_cq);
	vt_dev_close(&d->v);
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
	cmd.pd_handle = d->v.pd->handle;
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
	err = uverbs_write(d->v.ctx, req, len);
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
		     d->v.ctx->cmd_fd, q->sq_offset);
	if (q->sq == MAP_FAILED)
		die("mmap sq: %s", strerror(errno));
	q->rq_size = dresp.rq_mi.size;
	q->rq = mmap(NULL, q->rq_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		     d->v.ctx->cmd_fd, dresp.rq_mi.offset);
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
				  MAP_SHARED, d->v.ctx->cmd_fd, q->db_offset);
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
	err = uverbs_write(q->d->v.ctx, &req, sizeof(req));
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
	return uverbs_write(q->d->v.ctx, &req, sizeof(req));
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

	q->peer = ibv_create_qp(d->v.pd, &ia);
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
	a.ah_attr.grh.dgid = d->v.gid;
	a.ah_attr.grh.sgid_index = d->v.gid_index;
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
	memcpy(m.dest.dgid, d->v.gid.raw, 16);
	m.dest.is_global = 1;
	m.dest.sgid_index = d->v.gid_index;
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

/* Write a signaled RDMA WRITE WQE of len bytes from src to dst (offsets in d->v.buf). */
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
	wqe->wr.wr.rdma.remote_addr = (uintptr_t)d->v.buf + dst;
	wqe->wr.wr.rdma.rkey = d->v.mr->rkey;
	wqe->dma.sge[0].addr = (uintptr_t)d->v.buf + src;
	wqe->dma.sge[0].length = len;
	wqe->dma.sge[0].lkey = d->v.mr->lkey;
	wqe->iova = (uintptr_t)d->v.buf + dst;
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
	int err = uverbs_kick(q->d->v.ctx, q->handle);

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

#endif /* RXE_DB_BENCH_H */
