// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * The generic half of the peer doorbell verbs (peer_db.h): argument and
 * size checks, dispatch through verbs_context_ops, and the peer's side of
 * the capability probe. Providers fill full-size structs that this file
 * zeroed; the caller gets the first inlen bytes, so that an application
 * built against a smaller struct keeps working.
 */

#include <config.h>

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <ccan/array_size.h>
#include <infiniband/driver.h>
#include <infiniband/peer_db.h>

#include "ibverbs.h"
#include "peer_proxy.h"

static bool is_zero(const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len--)
		if (*b++)
			return false;
	return true;
}

/* An input struct: the caller's bytes past ours must be clear. */
static bool in_ext_cleared(const void *p, size_t ours, size_t inlen)
{
	return inlen <= ours || is_zero((const uint8_t *)p + ours, inlen - ours);
}

/* An output struct: the first inlen bytes of ours, the rest cleared. */
static void copy_out(void *dst, const void *src, size_t ours, size_t inlen)
{
	memcpy(dst, src, inlen < ours ? inlen : ours);
	if (inlen > ours)
		memset((uint8_t *)dst + ours, 0, inlen - ours);
}

static int fail(int err)
{
	errno = err;
	return err;
}

struct ibv_qp *ibv_peer_create_qp(struct ibv_context *context,
				  struct ibv_qp_init_attr_ex *qp_attr,
				  const struct ibv_peer_qp_init_attr *peer_attr,
				  size_t inlen)
{
	struct ibv_peer_qp_init_attr attr = {};
	uint32_t known = IBV_PEER_QP_RING_BY_PEER | IBV_PEER_QP_DEDICATED_DB |
			 IBV_PEER_QP_STAGED | IBV_PEER_QP_PROXY;
	uint32_t reason = IBV_PEER_DB_OK;
	struct ibv_qp *qp;

	if (!context || !qp_attr || !peer_attr ||
	    !vext_field_avail(struct ibv_peer_qp_init_attr, flags, inlen) ||
	    !in_ext_cleared(peer_attr, sizeof(attr), inlen)) {
		errno = EINVAL;
		return NULL;
	}
	memcpy(&attr, peer_attr, inlen < sizeof(attr) ? inlen : sizeof(attr));
	if (!is_zero(attr.reserved, sizeof(attr.reserved))) {
		errno = EINVAL;
		return NULL;
	}
	if (attr.comp_mask || (attr.flags & ~known)) {
		verbs_err(verbs_get_ctx(context),
			  "ibv_peer_create_qp: unknown comp_mask %#llx or flags %#x\n",
			  (unsigned long long)attr.comp_mask, attr.flags & ~known);
		errno = EOPNOTSUPP;
		return NULL;
	}
	if (attr.flags & (IBV_PEER_QP_DEDICATED_DB | IBV_PEER_QP_STAGED))
		attr.flags |= IBV_PEER_QP_RING_BY_PEER;

	if (!(attr.flags & IBV_PEER_QP_PROXY)) {
		qp = get_ops(context)->peer_create_qp(context, qp_attr, &attr);
		if (qp || errno != EOPNOTSUPP ||
		    !(attr.flags & IBV_PEER_QP_STAGED))
			return qp;
		/* the provider cannot: its sends go through the CPU proxy */
		reason = get_ops(context)->peer_create_qp ==
			 verbs_dummy_ops.peer_create_qp ?
			 IBV_PEER_DB_NO_PROVIDER_SUPPORT :
			 IBV_PEER_DB_KERNEL_TOO_OLD;
		verbs_debug(verbs_get_ctx(context),
			    "ibv_peer_create_qp: %s; using the CPU proxy\n",
			    ibv_peer_db_reason_str(reason));
	}
	return peer_proxy_create_qp(context, qp_attr, &attr, reason);
}

int ibv_peer_query_sq(struct ibv_qp *qp, struct ibv_peer_sq_attr *attr,
		      size_t inlen)
{
	struct ibv_peer_sq_attr out = {};
	int ret;

	if (!qp || !attr ||
	    !vext_field_avail(struct ibv_peer_sq_attr, db_value, inlen))
		return fail(EINVAL);
	ret = peer_proxy_query_sq(qp, &out);
	if (ret == 1)
		ret = get_ops(qp->context)->peer_query_sq(qp, &out);
	if (ret)
		return fail(ret);
	copy_out(attr, &out, sizeof(out), inlen);
	return 0;
}

int ibv_peer_query_cq(struct ibv_cq *cq, struct ibv_peer_cq_attr *attr,
		      size_t inlen)
{
	struct ibv_peer_cq_attr out = {};
	int ret;

	if (!cq || !attr ||
	    !vext_field_avail(struct ibv_peer_cq_attr, index_byte_order, inlen))
		return fail(EINVAL);
	ret = get_ops(cq->context)->peer_query_cq(cq, &out);
	if (ret)
		return fail(ret);
	copy_out(attr, &out, sizeof(out), inlen);
	return 0;
}

int ibv_peer_export_db(struct ibv_qp *qp, uint32_t flags,
		       struct ibv_peer_db_dmabuf *dmabuf, size_t inlen)
{
	struct ibv_peer_db_dmabuf out = { .fd = -1 };
	int ret;

	if (!qp || !dmabuf ||
	    !vext_field_avail(struct ibv_peer_db_dmabuf, length, inlen))
		return fail(EINVAL);
	if (flags & ~IBV_PEER_EXPORT_EXCLUSIVE) {
		verbs_err(verbs_get_ctx(qp->context),
			  "ibv_peer_export_db: unknown flags %#x\n",
			  flags & ~IBV_PEER_EXPORT_EXCLUSIVE);
		return fail(EOPNOTSUPP);
	}
	ret = peer_proxy_export_db(qp, flags, &out);
	if (ret == 1)
		ret = get_ops(qp->context)->peer_export_db(qp, flags, &out);
	if (ret)
		return fail(ret);
	copy_out(dmabuf, &out, sizeof(out), inlen);
	return 0;
}

static const char *const method_str[] = {
	[IBV_PEER_DB_METHOD_NONE] = "none",
	[IBV_PEER_DB_METHOD_DMABUF] = "dma-buf",
	[IBV_PEER_DB_METHOD_CPU_MAPPING] = "CPU mapping only",
	[IBV_PEER_DB_METHOD_PROXY] = "CPU proxy",
};

const char *ibv_peer_db_method_str(enum ibv_peer_db_method method)
{
	if ((unsigned int)method >= ARRAY_SIZE(method_str))
		return "unknown";
	return method_str[method];
}

/* Each says what stands in the way and what to do about it. */
static const char *const reason_str[] = {
	[IBV_PEER_DB_OK] = "the peer can import the doorbell's dma-buf",
	[IBV_PEER_DB_NO_PROVIDER_SUPPORT] =
		"the device's provider has no peer doorbell support; use a provider that implements the peer doorbell verbs",
	[IBV_PEER_DB_KERNEL_TOO_OLD] =
		"the kernel driver gives this QP no doorbell page, or cannot export it as a dma-buf; load a driver with peer doorbell support",
	[IBV_PEER_DB_NO_P2P_PATH] =
		"the peer device cannot reach the doorbell's memory (it does no DMA, or there is no PCIe peer-to-peer path to the NIC)",
	[IBV_PEER_DB_QP_NOT_FOR_PEER] =
		"the QP was not created for peer rings; create it with ibv_peer_create_qp() and IBV_PEER_QP_RING_BY_PEER",
	[IBV_PEER_DB_PEER_CANNOT_IMPORT] =
		"the peer cannot import a dma-buf (its provider has no ibv_reg_dmabuf_mr())",
	[IBV_PEER_DB_DISABLED] =
		"the driver is configured not to notice rings without a system call; see the provider's man page",
};

const char *ibv_peer_db_reason_str(enum ibv_peer_db_reason reason)
{
	if ((unsigned int)reason >= ARRAY_SIZE(reason_str))
		return "unknown reason";
	return reason_str[reason];
}

/* The best method left, and why it is not a better one. */
static void drop_method(struct ibv_peer_db_caps *caps, uint32_t method,
			uint32_t reason)
{
	if (!(caps->methods & (1u << method)))
		return;
	caps->methods &= ~(1u << method);
	if (caps->method != method)
		return;
	if (caps->methods & (1u << IBV_PEER_DB_METHOD_DMABUF))
		caps->method = IBV_PEER_DB_METHOD_DMABUF;
	else if (caps->methods & (1u << IBV_PEER_DB_METHOD_PROXY))
		caps->method = IBV_PEER_DB_METHOD_PROXY;
	else if (caps->methods & (1u << IBV_PEER_DB_METHOD_CPU_MAPPING))
		caps->method = IBV_PEER_DB_METHOD_CPU_MAPPING;
	else
		caps->method = IBV_PEER_DB_METHOD_NONE;
	caps->reason = reason;
}

/*
 * Whether the device at a sysfs path does DMA: sysfs has no such flag, but
 * devices under /sys/devices/virtual have no bus and do none. Returns 0,
 * or EINVAL for a path that is no device.
 */
static int sysfs_peer_dma(const char *sysfs_path, bool *dma)
{
	static const char devices[] = "/sys/devices/";
	static const char virt[] = "/sys/devices/virtual/";
	char *path = realpath(sysfs_path, NULL);

	if (!path)
		return errno == ENOMEM ? ENOMEM : EINVAL;
	if (strncmp(path, devices, sizeof(devices) - 1)) {
		free(path);
		return EINVAL;
	}
	*dma = strncmp(path, virt, sizeof(virt) - 1);
	free(path);
	return 0;
}

/*
 * The peer's side. A host-memory doorbell is reachable by any device that
 * does DMA (through the IOMMU, if any). A BAR doorbell needs a PCIe path
 * that only the kernel's P2PDMA distance check can judge: the import
 * decides, and the caps say so.
 */
static void probe_peer(const struct ibv_peer_desc *peer, bool dma,
		       struct ibv_peer_db_caps *caps)
{
	switch (peer->kind) {
	case IBV_PEER_ANY_DEVICE:
		break;
	case IBV_PEER_SYSFS_DEVICE:
		if (!dma) {
			drop_method(caps, IBV_PEER_DB_METHOD_DMABUF,
				    IBV_PEER_DB_NO_P2P_PATH);
			/* the proxy's shadow doorbell is a dma-buf too */
			drop_method(caps, IBV_PEER_DB_METHOD_PROXY,
				    IBV_PEER_DB_NO_P2P_PATH);
		}
		break;
	case IBV_PEER_RDMA_DEVICE:
		/* an MR over a CPU mapping of a doorbell (VM_PFNMAP) fails */
		drop_method(caps, IBV_PEER_DB_METHOD_CPU_MAPPING,
			    IBV_PEER_DB_PEER_CANNOT_IMPORT);
		if (get_ops(peer->rdma_ctx)->reg_dmabuf_mr ==
		    verbs_dummy_ops.reg_dmabuf_mr) {
			drop_method(caps, IBV_PEER_DB_METHOD_DMABUF,
				    IBV_PEER_DB_PEER_CANNOT_IMPORT);
			drop_method(caps, IBV_PEER_DB_METHOD_PROXY,
				    IBV_PEER_DB_PEER_CANNOT_IMPORT);
		}
		break;
	}
	if ((caps->methods & (1u << IBV_PEER_DB_METHOD_DMABUF)) &&
	    caps->backing == IBV_PEER_DB_BACKING_BAR &&
	    peer->kind != IBV_PEER_ANY_DEVICE)
		caps->flags |= IBV_PEER_DB_CAPS_PATH_UNCHECKED;
}

int ibv_peer_probe_db(struct ibv_qp *qp, const struct ibv_peer_desc *peer,
		      struct ibv_peer_db_caps *caps, size_t inlen)
{
	static const struct ibv_peer_desc any = { .kind = IBV_PEER_ANY_DEVICE };
	struct ibv_peer_db_caps out = {};
	bool dma = true;
	int ret;

	if (!qp || !caps ||
	    !vext_field_avail(struct ibv_peer_db_caps, max_ring_delay_us, inlen))
		return fail(EINVAL);
	if (!peer)
		peer = &any;
	if (peer->reserved0 || !is_zero(peer->reserved, sizeof(peer->reserved)) ||
	    (peer->kind == IBV_PEER_SYSFS_DEVICE && !peer->sysfs_path) ||
	    (peer->kind == IBV_PEER_RDMA_DEVICE && !peer->rdma_ctx))
		return fail(EINVAL);
	if (peer->comp_mask || peer->kind > IBV_PEER_RDMA_DEVICE)
		return fail(EOPNOTSUPP);
	if (peer->kind == IBV_PEER_SYSFS_DEVICE) {
		ret = sysfs_peer_dma(peer->sysfs_path, &dma);
		if (ret)
			return fail(ret);
	}

	ret = peer_proxy_probe_db(qp, &out);
	if (ret == 1)
		ret = get_ops(qp->context)->peer_probe_db(qp, peer, &out);
	if (ret == EOPNOTSUPP) {
		/* the dummy op: an answer, not an error */
		memset(&out, 0, sizeof(out));
		out.method = IBV_PEER_DB_METHOD_NONE;
		out.reason = IBV_PEER_DB_NO_PROVIDER_SUPPORT;
	} else if (ret) {
		return fail(ret);
	} else {
		probe_peer(peer, dma, &out);
	}
	copy_out(caps, &out, sizeof(out), inlen);
	return 0;
}
