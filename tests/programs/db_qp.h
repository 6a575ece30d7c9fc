/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * The QPs of the rxe doorbell tests, through the real provider: libibverbs
 * makes them (ibv_create_qp_ex() for a CPU doorbell, ibv_peer_create_qp()
 * for the peer, dedicated and staged kinds), ibv_peer_query_sq() tells
 * where the send queue and the doorbell slot are, ibv_post_send() posts
 * and rings as the provider does, and <infiniband/rxe_peer_wqe.h> builds
 * the WQEs a peer rings for itself. What the library would never do (a
 * forged request, a kick without a ring, a stale ringer) is in rxe_db.h.
 *
 * The tests run in page mode (RXE_DOORBELL unset): the QPs at the other
 * end have doorbell slots of their own in the same page, which a test that
 * garbles "every other slot" leaves alone (db_qp.peer_index).
 */
#ifndef DB_QP_H
#define DB_QP_H

#include <endian.h>
#include <inttypes.h>
#include <sys/mman.h>
#include <rdma/rdma_user_rxe.h>
#include <infiniband/rxe_peer_wqe.h>

#include "verbs_test.h"

/* db_qp_create(): a QP made by ibv_create_qp_ex(), not ibv_peer_create_qp() */
#define DBQ_PLAIN	VT_PLAIN_QP

struct db_qp {
	struct vt_qp v;			/* v.cq is the caller's, maybe shared */
	uint32_t qpn;
	struct ibv_peer_sq_attr sq;	/* from ibv_peer_query_sq() */
	struct rxe_peer_sq psq;		/* the builder's view, for peer posts */
	/* the doorbell: NULL when the QP rings with the system call */
	volatile struct rxe_db_slot *slot;
	void *page;			/* the provider's mapping of its page */
	uint32_t index;			/* the slot's index in the page */
	uint64_t offset;		/* the page's mmap offset */
	int peer_index;			/* the other end's slot in page, or -1 */
};

static inline long db_page_size(void)
{
	return sysconf(_SC_PAGESIZE);
}

/*
 * An rxe port counter, from sysfs. The core caches hw_counters for
 * RDMA_HW_STATS_DEFAULT_LIFESPAN (10 ms, rxe's): a read sooner after the
 * last one returns the old value, so every read waits that out first.
 */
static inline unsigned long long db_counter(const char *dev, const char *name)
{
	unsigned long long v;
	char path[256];
	FILE *f;

	usleep(20000);
	snprintf(path, sizeof(path),
		 "/sys/class/infiniband/%s/ports/1/hw_counters/%s", dev, name);
	f = fopen(path, "r");
	if (!f)
		die("open %s: %s", path, strerror(errno));
	if (fscanf(f, "%llu", &v) != 1)
		die("read %s", path);
	fclose(f);
	return v;
}

static inline uint32_t db_slot_flags(const struct db_qp *q)
{
	if (!q->slot)
		die("qp %u has no doorbell slot", q->qpn);
	return le32toh(__atomic_load_n(&q->slot->flags, __ATOMIC_ACQUIRE));
}

static inline uint32_t db_slot_value(const void *page, uint32_t index)
{
	const volatile struct rxe_db_slot *slot =
		(const struct rxe_db_slot *)page + index;

	return le32toh(__atomic_load_n(&slot->sq_prod, __ATOMIC_ACQUIRE));
}

/* Where the doorbell of a QP is: its slot, page, index and mmap offset. */
static inline void db_qp_query(struct db_qp *q)
{
	int ret = ibv_peer_query_sq(q->v.qp, &q->sq, sizeof(q->sq));

	if (ret)
		die("ibv_peer_query_sq of qp %u: %s", q->qpn, strerror(ret));
	if (q->sq.wqe_format != IBV_PEER_WQE_FORMAT_RXE)
		die("qp %u: WQE format %u, not rxe's", q->qpn, q->sq.wqe_format);
	rxe_peer_sq_init(&q->psq, q->sq.buf, q->sq.wqe_size, q->sq.wqe_cnt,
			 q->sq.prod_index, q->sq.cons_index, q->sq.db);
	q->slot = NULL;
	if (!q->sq.db)
		return;
	if (q->sq.db_width != 4 || q->sq.db_byte_order != IBV_PEER_LITTLE_ENDIAN ||
	    q->sq.db_value != IBV_PEER_DB_VALUE_PROD_INDEX)
		die("qp %u: doorbell width %u order %u value %u", q->qpn,
		    q->sq.db_width, q->sq.db_byte_order, q->sq.db_value);
	q->slot = (struct rxe_db_slot *)((char *)q->sq.db -
					 offsetof(struct rxe_db_slot, sq_prod));
	q->page = (void *)((uintptr_t)q->slot & ~((uintptr_t)db_page_size() - 1));
	q->index = (struct rxe_db_slot *)q->slot - (struct rxe_db_slot *)q->page;
	q->offset = vt_mmap_offset(q->page);
}

/*
 * Create the QP under test on cq (which the caller owns). kind: enum
 * ibv_peer_qp_flags for ibv_peer_create_qp(), or DBQ_PLAIN. Returns 0 or
 * an errno.
 */
static inline int db_qp_try_create(struct vt_dev *d, struct db_qp *q,
				   struct ibv_cq *cq, int kind, uint32_t depth)
{
	struct ibv_qp_init_attr_ex ia = {
		.cap = { .max_send_wr = depth, .max_recv_wr = 1,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.qp_type = IBV_QPT_RC,
		.comp_mask = IBV_QP_INIT_ATTR_PD,
		.pd = d->pd,
		.send_cq = cq,
		.recv_cq = cq,
	};
	struct ibv_peer_qp_init_attr pa = {};

	memset(q, 0, sizeof(*q));
	q->v.d = d;
	q->v.cq = cq;
	q->peer_index = -1;
	if (kind == DBQ_PLAIN) {
		q->v.qp = ibv_create_qp_ex(d->ctx, &ia);
	} else {
		pa.flags = kind;
		q->v.qp = ibv_peer_create_qp(d->ctx, &ia, &pa, sizeof(pa));
	}
	if (!q->v.qp)
		return errno;
	q->qpn = q->v.qp->qp_num;
	db_qp_query(q);
	return 0;
}

/* The same, and the QP must have a doorbell slot. */
static inline void db_qp_create(struct vt_dev *d, struct db_qp *q,
				struct ibv_cq *cq, int kind)
{
	int err = db_qp_try_create(d, q, cq, kind, 16);

	if (err)
		die("create qp (kind %d): %s", kind, strerror(err));
	if (!q->slot)
		die("qp %u (kind %d) has no doorbell: is RXE_DOORBELL=syscall set?",
		    q->qpn, kind);
}

/* Connect it to a new libibverbs QP on the same device (RC loopback). */
static inline void db_qp_connect(struct db_qp *q)
{
	struct ibv_peer_sq_attr a;

	vt_qp_connect(&q->v);
	if (ibv_peer_query_sq(q->v.peer, &a, sizeof(a)))
		die("ibv_peer_query_sq of the peer qp");
	if (q->slot && a.db &&
	    ((uintptr_t)a.db & ~((uintptr_t)db_page_size() - 1)) == (uintptr_t)q->page)
		q->peer_index = ((uintptr_t)a.db - (uintptr_t)q->page) /
				sizeof(struct rxe_db_slot);
}

/* Back from the error state: RESET, then connected again to a new peer QP. */
static inline void db_qp_reset_connect(struct db_qp *q)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_RESET };

	if (ibv_modify_qp(q->v.qp, &a, IBV_QP_STATE))
		die("qp %u: modify to RESET: %s", q->qpn, strerror(errno));
	if (ibv_destroy_qp(q->v.peer) || ibv_destroy_cq(q->v.peer_cq))
		die("destroy the peer qp");
	q->v.peer = NULL;
	q->v.peer_cq = NULL;
	q->peer_index = -1;
	db_qp_connect(q);
}

/* Destroy the QP and its other end; the CQ stays. Returns 0 or an errno. */
static inline int db_qp_destroy(struct db_qp *q)
{
	int err = ibv_destroy_qp(q->v.qp);

	if (err)
		return err;
	if (q->v.peer && ibv_destroy_qp(q->v.peer))
		die("destroy the peer qp");
	if (q->v.peer_cq && ibv_destroy_cq(q->v.peer_cq))
		die("destroy the peer cq");
	q->v.qp = q->v.peer = NULL;
	q->v.peer_cq = NULL;
	/* the provider unmapped the page if this was its last QP */
	q->slot = NULL;
	q->page = NULL;
	return 0;
}

/*
 * A signaled RDMA WRITE of len bytes from src to dst (offsets in d->buf),
 * through ibv_post_send(): the provider writes the WQE and rings (kicking
 * when the slot asks), or only queues it on a staged QP.
 */
static inline void db_post_write(struct db_qp *q, uint64_t wr_id,
				 size_t src, size_t dst, uint32_t len)
{
	int err = vt_post_write(&q->v, wr_id, src, dst, len);

	if (err)
		die("qp %u: ibv_post_send: %s", q->qpn, strerror(err));
}

/*
 * The same WQE, built by a peer with the header-only builder and published
 * through the producer index, not rung: db_peer_ring() or a peer device
 * rings it. The test is the QP's only producer, so the builder starts from
 * the queue's producer index, wherever ibv_post_send() left it.
 */
static inline void db_build_write(struct db_qp *q, uint64_t wr_id,
				  size_t src, size_t dst, uint32_t len)
{
	struct vt_dev *d = q->v.d;
	struct rxe_send_wqe *wqe;

	q->psq.prod = *(volatile uint32_t *)q->sq.prod_index;
	wqe = rxe_peer_sq_next(&q->psq);
	if (!wqe)
		die("qp %u: send queue full", q->qpn);
	rxe_peer_wqe_start(wqe, IBV_WR_RDMA_WRITE, wr_id, IBV_SEND_SIGNALED);
	rxe_peer_wqe_set_rdma(wqe, (uintptr_t)d->buf + dst, d->mr->rkey);
	rxe_peer_wqe_add_sge(wqe, (uintptr_t)d->buf + src, len, d->mr->lkey);
	rxe_peer_sq_produce(&q->psq, 1);
}

/* The producer index as the queue holds it: what a ring releases up to. */
static inline uint32_t db_prod(const struct db_qp *q)
{
	return *(volatile uint32_t *)q->sq.prod_index;
}

/* A peer's ring of everything produced: the store, never a kick. */
static inline void db_peer_ring(struct db_qp *q)
{
	q->psq.prod = db_prod(q);
	rxe_peer_sq_ring(&q->psq);
}

#endif /* DB_QP_H */
