// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * The peer doorbell verbs (<infiniband/peer_db.h>) on rxe. The generic
 * layer checked the arguments and hands us zeroed, full-size structs.
 *
 * rxe's queues are host memory shared with the kernel, its WQE is struct
 * rxe_send_wqe (built for peers by <infiniband/rxe_peer_wqe.h>), and its
 * doorbell is a 32-bit little-endian slot in a per-context doorbell page
 * (rxe_db.c). A QP created for peers has a slot the kernel's doorbell
 * engine scans while it sleeps; the page is a host-memory p2p mmap entry,
 * which the kernel exports as a write-only dma-buf.
 */

#include <config.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <infiniband/peer_db.h>

#include "rxe.h"
#include "rxe_queue.h"

#define RXE_PARAM_DIR	"/sys/module/rdma_rxe/parameters/"

struct ibv_qp *rxe_peer_create_qp(struct ibv_context *context,
				  struct ibv_qp_init_attr_ex *qp_attr,
				  const struct ibv_peer_qp_init_attr *peer_attr)
{
	uint32_t want = 0;

	if (peer_attr->flags & IBV_PEER_QP_RING_BY_PEER)
		want |= RXE_CREATE_QP_DOORBELL_PEER;
	if (peer_attr->flags & IBV_PEER_QP_DEDICATED_DB)
		want |= RXE_CREATE_QP_DOORBELL_DEDICATED;
	if (peer_attr->flags & IBV_PEER_QP_STAGED)
		want |= RXE_CREATE_QP_DOORBELL_STAGED;
	return rxe_create_qp_db(context, qp_attr, want);
}

int rxe_peer_query_sq(struct ibv_qp *ibqp, struct ibv_peer_sq_attr *attr)
{
	struct rxe_qp *qp = to_rqp(ibqp);
	struct rxe_queue_buf *q = qp->sq.queue;

	attr->buf = q->data;
	attr->wqe_size = 1u << q->log2_elem_size;
	attr->wqe_cnt = q->index_mask + 1;
	attr->wqe_format = IBV_PEER_WQE_FORMAT_RXE;
	attr->max_sge = qp->sq.max_sge;
	attr->max_inline = qp->sq.max_inline;
	/* one slot stays free: a full ring is prod + 1 == cons */
	attr->max_batch = q->index_mask;
	attr->prod_index = &q->producer_index;
	attr->cons_index = &q->consumer_index;
	attr->index_format = IBV_PEER_INDEX_WRAPPED;
	attr->index_width = sizeof(q->producer_index);
	attr->index_byte_order = __BYTE_ORDER == __LITTLE_ENDIAN ?
		IBV_PEER_LITTLE_ENDIAN : IBV_PEER_BIG_ENDIAN;
	if (qp->db.flags & RXE_CREATE_QP_DOORBELL_STAGED)
		attr->flags |= IBV_PEER_SQ_STAGED;
	if (qp->db.flags & RXE_CREATE_QP_DOORBELL_PEER)
		attr->flags |= IBV_PEER_SQ_RING_BY_PEER;
	if (qp->db.flags & RXE_CREATE_QP_DOORBELL_DEDICATED)
		attr->flags |= IBV_PEER_SQ_DEDICATED_DB;
	if (qp->db.slot) {
		attr->db = &qp->db.slot->sq_prod;
		attr->db_width = sizeof(qp->db.slot->sq_prod);
		attr->db_byte_order = IBV_PEER_LITTLE_ENDIAN;
		attr->db_value = IBV_PEER_DB_VALUE_PROD_INDEX;
	}
	return 0;
}

int rxe_peer_query_cq(struct ibv_cq *ibcq, struct ibv_peer_cq_attr *attr)
{
	struct rxe_cq *cq = to_rcq(ibcq);
	struct rxe_queue_buf *q = cq->queue;

	attr->buf = q->data;
	attr->cqe_size = 1u << q->log2_elem_size;
	attr->cqe_cnt = q->index_mask + 1;
	attr->cqe_format = IBV_PEER_CQE_FORMAT_UVERBS_WC;
	attr->index_format = IBV_PEER_INDEX_WRAPPED;
	attr->prod_index = &q->producer_index;
	attr->cons_index = &q->consumer_index;
	attr->index_width = sizeof(q->producer_index);
	attr->index_byte_order = __BYTE_ORDER == __LITTLE_ENDIAN ?
		IBV_PEER_LITTLE_ENDIAN : IBV_PEER_BIG_ENDIAN;
	return 0;
}

/* The QP's doorbell page as a dma-buf, or -1 with errno set. */
static int rxe_peer_dmabuf(struct rxe_qp *qp)
{
	int fd;

	/* the byte offset, as mlx5dv_devx_uar_export_dmabuf_fd() passes it */
	fd = ibv_cmd_export_dmabuf_fd(qp->vqp.qp.context, qp->db.page->offset);
	/* a kernel without UVERBS_OBJECT_DMABUF does not know the method */
	if (fd < 0 && errno == EPROTONOSUPPORT)
		errno = EOPNOTSUPP;
	return fd;
}

int rxe_peer_export_db(struct ibv_qp *ibqp, uint32_t flags,
		       struct ibv_peer_db_dmabuf *dmabuf)
{
	struct verbs_context *vctx = verbs_get_ctx(ibqp->context);
	struct rxe_qp *qp = to_rqp(ibqp);
	int fd;

	if (!qp->db.slot) {
		verbs_err(vctx, "rxe: QP %u has no doorbell page (the kernel gives none)\n",
			  ibqp->qp_num);
		return EOPNOTSUPP;
	}
	if (!(qp->db.flags & RXE_CREATE_QP_DOORBELL_PEER)) {
		verbs_err(vctx, "rxe: QP %u was not created with IBV_PEER_QP_RING_BY_PEER\n",
			  ibqp->qp_num);
		return EINVAL;
	}
	if ((flags & IBV_PEER_EXPORT_EXCLUSIVE) &&
	    !(qp->db.flags & RXE_CREATE_QP_DOORBELL_DEDICATED)) {
		verbs_err(vctx, "rxe: QP %u shares its doorbell page; create it with IBV_PEER_QP_DEDICATED_DB\n",
			  ibqp->qp_num);
		return EPERM;
	}
	fd = rxe_peer_dmabuf(qp);
	if (fd < 0)
		return errno;
	atomic_store(&to_rctx(ibqp->context)->db.export, RXE_DB_KERNEL_YES);

	dmabuf->fd = fd;
	dmabuf->offset = (uint64_t)qp->db.index * RXE_DB_SLOT_SIZE +
			 offsetof(struct rxe_db_slot, sq_prod);
	dmabuf->length = sysconf(_SC_PAGESIZE);
	dmabuf->flags = IBV_PEER_DMABUF_WRITE_ONLY | IBV_PEER_DMABUF_REVOCABLE;
	if (qp->db.flags & RXE_CREATE_QP_DOORBELL_DEDICATED)
		dmabuf->flags |= IBV_PEER_DMABUF_DEDICATED;
	return 0;
}

/* A module parameter of the running rdma_rxe, or NULL. */
static char *rxe_param(const char *name, char *buf, size_t len)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), RXE_PARAM_DIR "%s", name);
	f = fopen(path, "re");
	if (!f)
		return NULL;
	if (!fgets(buf, len, f)) {
		fclose(f);
		return NULL;
	}
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return buf;
}

/* Can the kernel export our doorbell pages? Learnt once per context. */
static int rxe_peer_can_export(struct rxe_qp *qp, bool *can)
{
	struct rxe_context *ctx = to_rctx(qp->vqp.qp.context);
	int state = atomic_load(&ctx->db.export);
	int fd;

	if (state == RXE_DB_KERNEL_UNKNOWN) {
		fd = rxe_peer_dmabuf(qp);
		if (fd >= 0) {
			close(fd);
			state = RXE_DB_KERNEL_YES;
		} else if (errno == EOPNOTSUPP) {
			state = RXE_DB_KERNEL_NO;
		} else {
			return errno;
		}
		atomic_store(&ctx->db.export, state);
	}
	*can = state == RXE_DB_KERNEL_YES;
	return 0;
}

int rxe_peer_probe_db(struct ibv_qp *ibqp, const struct ibv_peer_desc *peer,
		      struct ibv_peer_db_caps *caps)
{
	struct rxe_context *ctx = to_rctx(ibqp->context);
	struct rxe_qp *qp = to_rqp(ibqp);
	char buf[32];
	bool can = false;
	int ret;

	caps->backing = IBV_PEER_DB_BACKING_HOST;
	if (!qp->db.slot) {
		caps->backing = IBV_PEER_DB_BACKING_NONE;
		caps->reason = atomic_load(&ctx->db.kernel) == RXE_DB_KERNEL_NO ?
			IBV_PEER_DB_KERNEL_TOO_OLD : IBV_PEER_DB_QP_NOT_FOR_PEER;
		return 0;
	}
	if (!(qp->db.flags & RXE_CREATE_QP_DOORBELL_PEER)) {
		caps->reason = IBV_PEER_DB_QP_NOT_FOR_PEER;
		return 0;
	}
	/* db_mode=off: the engine never looks at a slot without a kick */
	if (rxe_param("db_mode", buf, sizeof(buf)) && !strcmp(buf, "off")) {
		caps->reason = IBV_PEER_DB_DISABLED;
		return 0;
	}
	if (qp->db.flags & RXE_CREATE_QP_DOORBELL_DEDICATED)
		caps->flags |= IBV_PEER_DB_CAPS_DEDICATED;
	if (qp->db.flags & RXE_CREATE_QP_DOORBELL_STAGED)
		caps->flags |= IBV_PEER_DB_CAPS_STAGED;
	if (rxe_param("db_peer_scan_us", buf, sizeof(buf)))
		caps->max_ring_delay_us = strtoul(buf, NULL, 10);

	/* the page is mapped here: the CPU mapping works in any case */
	caps->methods = 1u << IBV_PEER_DB_METHOD_CPU_MAPPING;
	caps->method = IBV_PEER_DB_METHOD_CPU_MAPPING;
	ret = rxe_peer_can_export(qp, &can);
	if (ret)
		return ret;
	if (!can) {
		caps->reason = IBV_PEER_DB_KERNEL_TOO_OLD;
		return 0;
	}
	caps->methods |= 1u << IBV_PEER_DB_METHOD_DMABUF;
	caps->method = IBV_PEER_DB_METHOD_DMABUF;
	caps->reason = IBV_PEER_DB_OK;
	return 0;
}
