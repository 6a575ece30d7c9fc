/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * What the rxe doorbell tests forge: requests, kicks, rings and mappings
 * that the rxe provider would never make, sent on the context's command
 * fd or stored by hand. Everything a verb does goes through libibverbs
 * (db_qp.h); each caller of these says at its spot why it forges.
 */
#ifndef RXE_DB_H
#define RXE_DB_H

#include <rdma/ib_user_verbs.h>

#include "db_qp.h"

/* rdma-core's private verb for UVERBS_METHOD_DMABUF_ALLOC (driver.h) */
int ibv_cmd_export_dmabuf_fd(struct ibv_context *ctx, off_t pg_off);

static inline int uverbs_write(struct ibv_context *ctx, void *buf, size_t len)
{
	ssize_t n = write(ctx->cmd_fd, buf, len);

	if (n == (ssize_t)len)
		return 0;
	return n < 0 ? errno : EIO;
}

/*
 * A create-QP request with driver data the provider never sends: flags,
 * and a response with resp_drv_len bytes of driver data. Returns the
 * errno of the refusal; a QP the kernel creates after all is destroyed,
 * and 0 returned.
 */
static inline int forge_create_qp(struct vt_dev *d, struct ibv_cq *cq,
				  uint32_t flags, size_t resp_drv_len)
{
	struct {
		struct ib_uverbs_cmd_hdr hdr;
		struct ib_uverbs_create_qp cmd;
		struct rxe_create_qp_cmd drv;
	} req = {};
	struct ib_uverbs_destroy_qp_resp dresp;
	struct {
		struct ib_uverbs_cmd_hdr hdr;
		struct ib_uverbs_destroy_qp cmd;
	} dreq = {};
	uint8_t resp[sizeof(struct ib_uverbs_create_qp_resp) +
		     sizeof(struct rxe_create_qp_resp)] = {};
	struct ib_uverbs_create_qp_resp cresp;
	int err;

	req.hdr.command = IB_USER_VERBS_CMD_CREATE_QP;
	req.hdr.in_words = sizeof(req) / 4;
	req.hdr.out_words = (sizeof(cresp) + resp_drv_len) / 4;
	req.cmd.response = (uintptr_t)resp;
	req.cmd.pd_handle = d->pd->handle;
	req.cmd.send_cq_handle = cq->handle;
	req.cmd.recv_cq_handle = cq->handle;
	req.cmd.max_send_wr = 16;
	req.cmd.max_recv_wr = 1;
	req.cmd.max_send_sge = 1;
	req.cmd.max_recv_sge = 1;
	req.cmd.qp_type = IBV_QPT_RC;
	req.drv.flags = flags;
	err = uverbs_write(d->ctx, &req, sizeof(req));
	if (err)
		return err;
	/* its queues and doorbell page were never mapped: only the handle */
	memcpy(&cresp, resp, sizeof(cresp));
	dreq.hdr.command = IB_USER_VERBS_CMD_DESTROY_QP;
	dreq.hdr.in_words = sizeof(dreq) / 4;
	dreq.hdr.out_words = sizeof(dresp) / 4;
	dreq.cmd.response = (uintptr_t)&dresp;
	dreq.cmd.qp_handle = cresp.qp_handle;
	if (uverbs_write(d->ctx, &dreq, sizeof(dreq)))
		die("destroy the forged qp");
	return 0;
}

/* An empty POST_SEND, the kick; 0 or an errno (EIO once the device is gone). */
static inline int uverbs_kick(struct ibv_context *ctx, uint32_t qp_handle)
{
	struct {
		struct ib_uverbs_cmd_hdr hdr;
		struct ib_uverbs_post_send cmd;
	} req = {};
	struct ib_uverbs_post_send_resp resp;

	req.hdr.command = IB_USER_VERBS_CMD_POST_SEND;
	req.hdr.in_words = sizeof(req) / 4;
	req.hdr.out_words = sizeof(resp) / 4;
	req.cmd.response = (uintptr_t)&resp;
	req.cmd.qp_handle = qp_handle;
	req.cmd.wqe_size = sizeof(struct ib_uverbs_send_wr);
	return uverbs_write(ctx, &req, sizeof(req));
}

/*
 * A kick without a ring the provider made: after a forged ring, or on a
 * staged QP, whose posts never kick.
 */
static inline int forge_kick(struct db_qp *q)
{
	return uverbs_kick(q->v.qp->context, q->v.qp->handle);
}

/* Any value into any slot of a mapped doorbell page: garbage, stale rings. */
static inline void forge_ring(void *page, uint32_t index, uint32_t val)
{
	volatile struct rxe_db_slot *slot = (struct rxe_db_slot *)page + index;

	__atomic_store_n(&slot->sq_prod, htole32(val), __ATOMIC_RELEASE);
}

/*
 * A mapping of a doorbell page of our own: a stale ringer keeps it past
 * the QP, which the provider's mapping does not outlive. NULL on failure.
 */
static inline void *forge_map_page(struct ibv_context *ctx, uint64_t offset,
				   size_t len, int flags)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, ctx->cmd_fd,
		       offset);

	return p == MAP_FAILED ? NULL : p;
}

#endif /* RXE_DB_H */
