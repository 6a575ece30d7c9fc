// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * The peer doorbell verbs (<infiniband/peer_db.h>) on EFA: the generic
 * form of efadv_query_qp_wqs() and efadv_query_cq(), which they call.
 *
 * EFA's kernel driver does not export doorbells (no mmap_get_pfns or
 * pgoff_to_mmap_entry for UVERBS_METHOD_DMABUF_ALLOC, its BAR pages are
 * not inserted with rdma_user_mmap_entry_insert_bar()): the export fails
 * with EOPNOTSUPP and the probe offers the CPU mapping only. EFA has no
 * staged sends either: libibverbs' CPU proxy stands in for a staged QP.
 *
 * Compile-tested only; untested on hardware (efa_peer_db(7)).
 */

#include <config.h>

#include <errno.h>
#include <string.h>

#include <infiniband/peer_db.h>

#include "efa.h"
#include "efadv.h"
#include "efa_peer.h"
#include "verbs.h"

struct ibv_qp *efa_peer_create_qp(struct ibv_context *context,
				  struct ibv_qp_init_attr_ex *qp_attr,
				  const struct ibv_peer_qp_init_attr *peer_attr)
{
	/*
	 * The device notices doorbell writes by itself: any QP can be rung
	 * by a peer. Its doorbells share the context's doorbell page, and a
	 * write always sends.
	 */
	if (peer_attr->flags & (IBV_PEER_QP_DEDICATED_DB | IBV_PEER_QP_STAGED)) {
		verbs_err(verbs_get_ctx(context),
			  "efa: no dedicated doorbell pages or staged sends\n");
		errno = EOPNOTSUPP;
		return NULL;
	}
	return efa_create_qp_ex(context, qp_attr);
}

int efa_peer_query_sq(struct ibv_qp *ibqp, struct ibv_peer_sq_attr *attr)
{
	struct efa_qp *qp = to_efa_qp(ibqp);
	struct efadv_wq_attr sq = {}, rq = {};
	int ret;

	ret = efadv_query_qp_wqs(ibqp, &sq, &rq, sizeof(sq));
	if (ret)
		return ret;
	attr->buf = sq.buffer;
	attr->wqe_size = sq.entry_size;
	attr->wqe_cnt = sq.num_entries;
	attr->wqe_format = IBV_PEER_WQE_FORMAT_EFA;
	attr->max_sge = qp->sq.wq.max_sge;
	attr->max_inline = qp->sq.max_inline_data;
	attr->max_batch = sq.max_batch;
	/* the CPU producer's counter; a peer that posts keeps its own */
	attr->prod_index = &qp->sq.wq.pc;
	attr->index_format = IBV_PEER_INDEX_FREE_RUNNING_16;
	attr->index_width = sizeof(qp->sq.wq.pc);
	attr->index_byte_order = __BYTE_ORDER == __LITTLE_ENDIAN ?
		IBV_PEER_LITTLE_ENDIAN : IBV_PEER_BIG_ENDIAN;
	attr->flags = IBV_PEER_SQ_RING_BY_PEER;
	/* a 32-bit MMIO write of the producer counter (efa_sq_ring_doorbell) */
	attr->db = sq.doorbell;
	attr->db_width = sizeof(*sq.doorbell);
	attr->db_byte_order = IBV_PEER_LITTLE_ENDIAN;
	attr->db_value = IBV_PEER_DB_VALUE_PROD_INDEX;
	return 0;
}

int efa_peer_query_cq(struct ibv_cq *ibcq, struct ibv_peer_cq_attr *attr)
{
	struct efadv_cq_attr cq = {};
	int ret;

	ret = efadv_query_cq(ibcq, &cq, sizeof(cq));
	if (ret)
		return ret;
	attr->buf = cq.buffer;
	attr->cqe_size = cq.entry_size;
	attr->cqe_cnt = cq.num_entries;
	attr->cqe_format = IBV_PEER_CQE_FORMAT_EFA;
	/* completions carry a phase bit; there is no index in memory */
	attr->index_format = IBV_PEER_INDEX_NONE;
	return 0;
}

int efa_peer_export_db(struct ibv_qp *ibqp, uint32_t flags,
		       struct ibv_peer_db_dmabuf *dmabuf)
{
	verbs_err(verbs_get_ctx(ibqp->context),
		  "efa: the kernel driver cannot export doorbells as dma-bufs (it needs mmap_get_pfns, or its doorbell pages inserted by rdma_user_mmap_entry_insert_bar())\n");
	return EOPNOTSUPP;
}

int efa_peer_probe_db(struct ibv_qp *ibqp, const struct ibv_peer_desc *peer,
		      struct ibv_peer_db_caps *caps)
{
	caps->backing = IBV_PEER_DB_BACKING_BAR;
	caps->methods = 1u << IBV_PEER_DB_METHOD_CPU_MAPPING;
	caps->method = IBV_PEER_DB_METHOD_CPU_MAPPING;
	caps->reason = IBV_PEER_DB_KERNEL_TOO_OLD;
	return 0;
}
