// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * The peer doorbell verbs (<infiniband/peer_db.h>) on mlx5: the generic
 * form of mlx5dv_init_obj() for a QP's send queue and a CQ, and of
 * mlx5dv_devx_uar_export_dmabuf_fd() for the QP's doorbell.
 *
 * The send queue is read from the provider's own QP (what mlx5dv_init_obj()
 * reports as struct mlx5dv_qp): 64-byte basic blocks, the doorbell record
 * (a big-endian 16-bit free-running producer counter) and the UAR doorbell
 * register, rung with the first 8 bytes of the last WQE's control segment.
 * The export is the kernel's UVERBS_METHOD_DMABUF_ALLOC on the UAR page's
 * mmap offset, as mlx5dv_devx_uar_export_dmabuf_fd() does; the kernel has
 * mmap entries (and mmap_get_pfns) for dynamically allocated UARs only.
 * A UAR of the QP's own (MLX5DV_UAR_ALLOC_TYPE_NC_DEDICATED) needs a DEVX
 * QP and is not offered here: IBV_PEER_QP_DEDICATED_DB fails, and so does
 * IBV_PEER_QP_STAGED (mlx5 always sends on a ring; libibverbs' CPU proxy
 * stands in for a staged QP).
 *
 * Compile-tested only; untested on hardware (mlx5_peer_db(7)).
 */

#include <config.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <infiniband/peer_db.h>

#include "mlx5.h"
#include "mlx5_peer.h"

struct ibv_qp *mlx5_peer_create_qp(struct ibv_context *context,
				   struct ibv_qp_init_attr_ex *qp_attr,
				   const struct ibv_peer_qp_init_attr *peer_attr)
{
	if (peer_attr->flags & (IBV_PEER_QP_DEDICATED_DB | IBV_PEER_QP_STAGED)) {
		verbs_err(verbs_get_ctx(context),
			  "mlx5: no per-QP doorbell UAR or staged sends for peer QPs\n");
		errno = EOPNOTSUPP;
		return NULL;
	}
	/* the NIC notices a doorbell write by itself: any QP will do */
	return mlx5_create_qp_ex(context, qp_attr);
}

int mlx5_peer_query_sq(struct ibv_qp *ibqp, struct ibv_peer_sq_attr *attr)
{
	struct mlx5_qp *qp = to_mqp(ibqp);

	if (!qp->sq.wqe_cnt || !qp->bf)
		return EOPNOTSUPP;	/* no send queue (e.g. a DCT) */
	attr->buf = qp->sq_start;
	attr->wqe_size = 1u << qp->sq.wqe_shift;
	attr->wqe_cnt = qp->sq.wqe_cnt;
	attr->wqe_format = IBV_PEER_WQE_FORMAT_MLX5;
	attr->max_sge = qp->sq.max_gs;
	attr->max_inline = qp->max_inline_data;
	attr->max_batch = qp->sq.max_post;
	/* the doorbell record, written before the doorbell (mlx5_post_send) */
	attr->prod_index = &qp->db[MLX5_SND_DBR];
	attr->index_format = IBV_PEER_INDEX_FREE_RUNNING_16;
	attr->index_width = sizeof(qp->db[MLX5_SND_DBR]);
	attr->index_byte_order = IBV_PEER_BIG_ENDIAN;
	attr->flags = IBV_PEER_SQ_RING_BY_PEER;
	if (qp->bf->qp_dedicated)
		attr->flags |= IBV_PEER_SQ_DEDICATED_DB;
	attr->db = qp->bf->reg;
	attr->db_width = sizeof(uint64_t);
	attr->db_byte_order = IBV_PEER_BIG_ENDIAN;
	attr->db_value = IBV_PEER_DB_VALUE_MLX5_CTRL;
	return 0;
}

int mlx5_peer_query_cq(struct ibv_cq *ibcq, struct ibv_peer_cq_attr *attr)
{
	struct mlx5_cq *cq = to_mcq(ibcq);

	attr->buf = cq->active_buf->ibv_buf.addr;
	attr->cqe_size = cq->cqe_sz;
	attr->cqe_cnt = ibcq->cqe + 1;
	attr->cqe_format = IBV_PEER_CQE_FORMAT_MLX5;
	/* the owner bit says what the NIC wrote; the consumer sets CI */
	attr->index_format = IBV_PEER_INDEX_FREE_RUNNING_24;
	attr->cons_index = &cq->dbrec[MLX5_CQ_SET_CI];
	attr->index_width = sizeof(cq->dbrec[MLX5_CQ_SET_CI]);
	attr->index_byte_order = IBV_PEER_BIG_ENDIAN;
	return 0;
}

/* Whether the kernel can export the QP's UAR page: it has an mmap entry. */
static bool mlx5_peer_exportable(struct mlx5_qp *qp)
{
	return qp->bf && qp->bf->dyn_alloc_uar && qp->bf->uar;
}

int mlx5_peer_export_db(struct ibv_qp *ibqp, uint32_t flags,
			struct ibv_peer_db_dmabuf *dmabuf)
{
	struct verbs_context *vctx = verbs_get_ctx(ibqp->context);
	struct mlx5_qp *qp = to_mqp(ibqp);
	int fd;

	if (!mlx5_peer_exportable(qp)) {
		verbs_err(vctx, "mlx5: QP %u rings a static UAR, which the kernel does not export\n",
			  ibqp->qp_num);
		return EOPNOTSUPP;
	}
	if ((flags & IBV_PEER_EXPORT_EXCLUSIVE) && !qp->bf->qp_dedicated) {
		verbs_err(vctx, "mlx5: QP %u shares its UAR page\n", ibqp->qp_num);
		return EPERM;
	}
	fd = ibv_cmd_export_dmabuf_fd(ibqp->context, qp->bf->uar_mmap_offset);
	if (fd < 0)
		return errno == EPROTONOSUPPORT ? EOPNOTSUPP : errno;
	dmabuf->fd = fd;
	dmabuf->offset = (uint8_t *)qp->bf->reg - (uint8_t *)qp->bf->uar;
	dmabuf->length = sysconf(_SC_PAGESIZE);
	/* a uverbs export: revoked with the UAR */
	dmabuf->flags = IBV_PEER_DMABUF_REVOCABLE;
	if (qp->bf->qp_dedicated)
		dmabuf->flags |= IBV_PEER_DMABUF_DEDICATED;
	return 0;
}

int mlx5_peer_probe_db(struct ibv_qp *ibqp, const struct ibv_peer_desc *peer,
		       struct ibv_peer_db_caps *caps)
{
	struct mlx5_qp *qp = to_mqp(ibqp);

	if (!qp->bf) {
		caps->reason = IBV_PEER_DB_QP_NOT_FOR_PEER;
		return 0;
	}
	caps->backing = IBV_PEER_DB_BACKING_BAR;
	caps->methods = 1u << IBV_PEER_DB_METHOD_CPU_MAPPING;
	caps->method = IBV_PEER_DB_METHOD_CPU_MAPPING;
	if (qp->bf->qp_dedicated)
		caps->flags |= IBV_PEER_DB_CAPS_DEDICATED;
	if (!mlx5_peer_exportable(qp)) {
		caps->reason = IBV_PEER_DB_KERNEL_TOO_OLD;
		return 0;
	}
	caps->methods |= 1u << IBV_PEER_DB_METHOD_DMABUF;
	caps->method = IBV_PEER_DB_METHOD_DMABUF;
	caps->reason = IBV_PEER_DB_OK;
	return 0;
}
