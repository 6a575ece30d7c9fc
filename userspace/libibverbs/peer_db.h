/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * Peer doorbells: generic verbs that hand a QP's send queue and doorbell to
 * a peer device (another RDMA NIC, a GPU, any DMA-capable accelerator), so
 * that the peer writes WQEs and rings the NIC without the CPU.
 *
 * The generic form of efadv_query_qp_wqs()/efadv_query_cq() and
 * mlx5dv_init_obj() plus mlx5dv_devx_uar_export_dmabuf_fd(): no provider
 * names in application code. Providers implement the verbs_context_ops
 * peer_* entries; without them every verb fails with EOPNOTSUPP, and
 * ibv_peer_probe_db() answers IBV_PEER_DB_NO_PROVIDER_SUPPORT.
 *
 * Compatibility: every struct opens with comp_mask and ends in reserved
 * bytes; every call that fills a struct takes its size (inlen), so that
 * the struct can grow without breaking the ABI. Input structs must have
 * their reserved bytes, and any bytes past the struct this library knows,
 * cleared.
 *
 * See ibv_peer_create_qp(3), ibv_peer_query_sq(3), ibv_peer_query_cq(3),
 * ibv_peer_export_db(3) and ibv_peer_probe_db(3).
 */

#ifndef INFINIBAND_PEER_DB_H
#define INFINIBAND_PEER_DB_H

#include <stddef.h>
#include <stdint.h>
#include <infiniband/verbs.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- creating a QP that a peer rings ---- */

enum ibv_peer_qp_flags {
	/*
	 * A peer device, which cannot make a system call, rings this QP's
	 * doorbell: the NIC must notice a ring without any further action.
	 */
	IBV_PEER_QP_RING_BY_PEER	= 1 << 0,
	/*
	 * The doorbell sits alone in a doorbell page of its own, so that an
	 * export grants ringing this QP and no other (the granularity of
	 * MLX5DV_UAR_ALLOC_TYPE_NC_DEDICATED). Implies IBV_PEER_QP_RING_BY_PEER.
	 */
	IBV_PEER_QP_DEDICATED_DB	= 1 << 1,
	/*
	 * Staged sends: ibv_post_send() and ibv_wr_complete() queue WQEs but
	 * do not ring; the NIC sends only the WQEs that a ring released (the
	 * doorbell value is the producer index up to which WQEs go). Implies
	 * IBV_PEER_QP_RING_BY_PEER.
	 */
	IBV_PEER_QP_STAGED		= 1 << 2,
	/*
	 * Ring through libibverbs' CPU proxy even where the provider could
	 * hand out its own doorbell (for comparisons, or for a peer that
	 * cannot import the provider's). Requires IBV_PEER_QP_STAGED. Without
	 * this flag the proxy is the fallback for a staged QP that the
	 * provider cannot create; ibv_peer_probe_db() tells which one a QP got.
	 */
	IBV_PEER_QP_PROXY		= 1 << 3,
};

struct ibv_peer_qp_init_attr {
	uint64_t comp_mask;	/* in: no bits defined yet, must be 0 */
	uint32_t flags;		/* in: enum ibv_peer_qp_flags */
	uint8_t reserved[20];	/* in: must be 0 */
};

struct ibv_qp *ibv_peer_create_qp(struct ibv_context *context,
				  struct ibv_qp_init_attr_ex *qp_attr,
				  const struct ibv_peer_qp_init_attr *peer_attr,
				  size_t inlen);

/* ---- the send queue and the CQ, as a peer sees them ---- */

/* How a WQE or CQE is laid out; each format names its reference. */
enum ibv_peer_wqe_format {
	IBV_PEER_WQE_FORMAT_NONE	= 0,
	/* struct rxe_send_wqe of <rdma/rdma_user_rxe.h>, host byte order;
	 * built by <infiniband/rxe_peer_wqe.h> */
	IBV_PEER_WQE_FORMAT_RXE		= 1,
	/* struct efa_io_tx_wqe of the EFA provider's efa_io_defs.h, with
	 * the phase bit of its meta descriptor */
	IBV_PEER_WQE_FORMAT_EFA		= 2,
	/* mlx5 send WQEs (struct mlx5_wqe_ctrl_seg first, <infiniband/mlx5dv.h>),
	 * 64-byte basic blocks, big-endian */
	IBV_PEER_WQE_FORMAT_MLX5	= 3,
};

enum ibv_peer_cqe_format {
	IBV_PEER_CQE_FORMAT_NONE	= 0,
	/* struct ib_uverbs_wc of <rdma/ib_user_verbs.h>, host byte order */
	IBV_PEER_CQE_FORMAT_UVERBS_WC	= 1,
	/* struct efa_io_cdesc_common first, a phase bit per pass */
	IBV_PEER_CQE_FORMAT_EFA		= 2,
	/* struct mlx5_cqe64 of <infiniband/mlx5dv.h>, an owner bit per pass */
	IBV_PEER_CQE_FORMAT_MLX5	= 3,
};

/* What a producer or consumer index holds. */
enum ibv_peer_index_format {
	IBV_PEER_INDEX_NONE		= 0,
	/*
	 * The ring slot of the next entry, 0 .. count - 1: an entry is
	 * produced (consumed) by storing (index + 1) % count.
	 */
	IBV_PEER_INDEX_WRAPPED		= 1,
	/*
	 * A free-running 16-bit counter of entries: the slot of the next
	 * entry is index % count; it wraps at 2^16 whatever index_width is.
	 */
	IBV_PEER_INDEX_FREE_RUNNING_16	= 2,
	/* the same, 24 bits */
	IBV_PEER_INDEX_FREE_RUNNING_24	= 3,
};

enum ibv_peer_byte_order {
	IBV_PEER_LITTLE_ENDIAN		= 1,
	IBV_PEER_BIG_ENDIAN		= 2,
};

/* What a peer stores into the doorbell. */
enum ibv_peer_db_value {
	IBV_PEER_DB_VALUE_NONE		= 0,
	/* the new producer index, in the send queue's index format */
	IBV_PEER_DB_VALUE_PROD_INDEX	= 1,
	/* the first 8 bytes of the last posted WQE's control segment (mlx5) */
	IBV_PEER_DB_VALUE_MLX5_CTRL	= 2,
};

enum ibv_peer_sq_flags {
	/* created with IBV_PEER_QP_STAGED: a ring releases WQEs */
	IBV_PEER_SQ_STAGED		= 1 << 0,
	/* the NIC notices a ring by itself (IBV_PEER_QP_RING_BY_PEER) */
	IBV_PEER_SQ_RING_BY_PEER	= 1 << 1,
	/* the doorbell page holds this QP's doorbell only */
	IBV_PEER_SQ_DEDICATED_DB	= 1 << 2,
	/*
	 * the doorbell is a shadow in host memory that libibverbs' CPU proxy
	 * watches; a ring releases the staged sends through the provider
	 */
	IBV_PEER_SQ_PROXY		= 1 << 3,
};

struct ibv_peer_sq_attr {
	uint64_t comp_mask;	/* out: no bits defined yet */
	void *buf;		/* the first WQE of the ring */
	uint32_t wqe_size;	/* bytes from one WQE to the next */
	uint32_t wqe_cnt;	/* WQEs in the ring, a power of two */
	uint32_t wqe_format;	/* enum ibv_peer_wqe_format */
	uint32_t max_sge;	/* scatter/gather entries per WQE */
	uint32_t max_inline;	/* inline data bytes per WQE */
	uint32_t max_batch;	/* WQEs one ring may release */
	/*
	 * The producer index: where the producer of WQEs publishes how far
	 * it wrote, after the WQEs and before the ring (release order).
	 */
	void *prod_index;
	/* the consumer index: how far the NIC consumed; read only */
	const void *cons_index;
	uint32_t index_format;	/* enum ibv_peer_index_format */
	uint32_t index_width;	/* bytes of either index */
	uint32_t index_byte_order; /* enum ibv_peer_byte_order */
	uint32_t flags;		/* enum ibv_peer_sq_flags */
	/*
	 * The doorbell, mapped in this process; NULL when the QP has none.
	 * A ring is one naturally aligned store of db_width bytes.
	 */
	void *db;
	uint32_t db_width;
	uint32_t db_byte_order;	/* enum ibv_peer_byte_order */
	uint32_t db_value;	/* enum ibv_peer_db_value */
	uint8_t reserved[36];
};

int ibv_peer_query_sq(struct ibv_qp *qp, struct ibv_peer_sq_attr *attr,
		      size_t inlen);

struct ibv_peer_cq_attr {
	uint64_t comp_mask;	/* out: no bits defined yet */
	void *buf;		/* the first CQE of the ring */
	uint32_t cqe_size;	/* bytes from one CQE to the next */
	uint32_t cqe_cnt;	/* CQEs in the ring, a power of two */
	uint32_t cqe_format;	/* enum ibv_peer_cqe_format */
	uint32_t index_format;	/* enum ibv_peer_index_format */
	/* the producer index: how far the NIC wrote CQEs; read only */
	const void *prod_index;
	/* the consumer index: the consumer publishes how far it read */
	void *cons_index;
	uint32_t index_width;
	uint32_t index_byte_order; /* enum ibv_peer_byte_order */
	uint8_t reserved[32];
};

int ibv_peer_query_cq(struct ibv_cq *cq, struct ibv_peer_cq_attr *attr,
		      size_t inlen);

/* ---- exporting the doorbell as a dma-buf ---- */

enum ibv_peer_export_flags {
	/* fail with EPERM unless the dma-buf grants this QP's doorbell only */
	IBV_PEER_EXPORT_EXCLUSIVE	= 1 << 0,
};

enum ibv_peer_dmabuf_flags {
	/* the dma-buf reaches this QP's doorbell and no other */
	IBV_PEER_DMABUF_DEDICATED	= 1 << 0,
	/* peers may map it for writing (ringing) only */
	IBV_PEER_DMABUF_WRITE_ONLY	= 1 << 1,
	/*
	 * the kernel revokes it when the doorbell goes (with the QP if
	 * DEDICATED, else with the context): importers are told
	 * (invalidate_mappings) and their access ends
	 */
	IBV_PEER_DMABUF_REVOCABLE	= 1 << 2,
};

struct ibv_peer_db_dmabuf {
	uint64_t comp_mask;	/* out: no bits defined yet */
	int32_t fd;		/* the dma-buf; the caller closes it */
	uint32_t flags;		/* enum ibv_peer_dmabuf_flags */
	uint64_t offset;	/* the doorbell's byte offset in the dma-buf */
	uint64_t length;	/* the dma-buf's size in bytes */
	uint8_t reserved[32];
};

int ibv_peer_export_db(struct ibv_qp *qp, uint32_t flags,
		       struct ibv_peer_db_dmabuf *dmabuf, size_t inlen);

/* ---- can a peer ring this QP, and how ---- */

enum ibv_peer_kind {
	/* any DMA-capable device that imports dma-bufs */
	IBV_PEER_ANY_DEVICE		= 0,
	/* the device at sysfs_path, e.g. /sys/bus/pci/devices/0000:03:00.0 */
	IBV_PEER_SYSFS_DEVICE		= 1,
	/* an RDMA device that registers a dma-buf MR over the doorbell */
	IBV_PEER_RDMA_DEVICE		= 2,
};

struct ibv_peer_desc {
	uint64_t comp_mask;	/* in: no bits defined yet, must be 0 */
	uint32_t kind;		/* in: enum ibv_peer_kind */
	uint32_t reserved0;
	const char *sysfs_path;	/* in: IBV_PEER_SYSFS_DEVICE */
	struct ibv_context *rdma_ctx; /* in: IBV_PEER_RDMA_DEVICE */
	uint8_t reserved[16];	/* in: must be 0 */
};

enum ibv_peer_db_method {
	/* the peer cannot ring this QP; reason says why */
	IBV_PEER_DB_METHOD_NONE		= 0,
	/* the peer imports the dma-buf of ibv_peer_export_db() and rings */
	IBV_PEER_DB_METHOD_DMABUF	= 1,
	/*
	 * only through the doorbell's mapping in this process (the db of
	 * ibv_peer_query_sq()), e.g. a GPU registering it as I/O memory:
	 * no revocation, and the peer must be able to use CPU mappings
	 */
	IBV_PEER_DB_METHOD_CPU_MAPPING	= 2,
	/*
	 * the peer imports the dma-buf of ibv_peer_export_db(), a shadow
	 * doorbell in host memory, and rings it; a CPU thread of libibverbs
	 * (the proxy) notices the ring and releases the staged sends through
	 * the provider. Costs CPU time and latency, see ibv_peer_db_caps.
	 */
	IBV_PEER_DB_METHOD_PROXY	= 3,
};

enum ibv_peer_db_reason {
	/* nothing stands in the way of the best method, dma-buf */
	IBV_PEER_DB_OK			= 0,
	/* the device's provider has no peer doorbell support */
	IBV_PEER_DB_NO_PROVIDER_SUPPORT	= 1,
	/* the kernel driver gives no doorbell page, or cannot export one */
	IBV_PEER_DB_KERNEL_TOO_OLD	= 2,
	/* the peer cannot reach the doorbell's memory */
	IBV_PEER_DB_NO_P2P_PATH		= 3,
	/* the QP was not created with IBV_PEER_QP_RING_BY_PEER */
	IBV_PEER_DB_QP_NOT_FOR_PEER	= 4,
	/* the peer cannot import a dma-buf */
	IBV_PEER_DB_PEER_CANNOT_IMPORT	= 5,
	/* the driver is configured not to notice peer rings */
	IBV_PEER_DB_DISABLED		= 6,
};

/* Where the doorbell lives, which decides whether a peer reaches it. */
enum ibv_peer_db_backing {
	IBV_PEER_DB_BACKING_NONE	= 0,
	/* host memory: any DMA-capable device reaches it */
	IBV_PEER_DB_BACKING_HOST	= 1,
	/* a PCI BAR of the NIC: needs a PCIe peer-to-peer path */
	IBV_PEER_DB_BACKING_BAR		= 2,
};

enum ibv_peer_db_caps_flags {
	/* ibv_peer_export_db() would grant this QP's doorbell only */
	IBV_PEER_DB_CAPS_DEDICATED	= 1 << 0,
	/* the QP is staged: the peer's ring releases WQEs */
	IBV_PEER_DB_CAPS_STAGED		= 1 << 1,
	/* the P2P path to a BAR doorbell was not checked: the import decides */
	IBV_PEER_DB_CAPS_PATH_UNCHECKED	= 1 << 2,
};

enum ibv_peer_db_caps_mask {
	/* proxy_spin_us is valid (method IBV_PEER_DB_METHOD_PROXY) */
	IBV_PEER_DB_CAPS_MASK_PROXY_COST	= 1 << 0,
};

struct ibv_peer_db_caps {
	uint64_t comp_mask;	/* out: enum ibv_peer_db_caps_mask */
	uint32_t method;	/* the best method, enum ibv_peer_db_method */
	uint32_t methods;	/* every method that works: 1 << method */
	uint32_t reason;	/* enum ibv_peer_db_reason: why not dma-buf */
	uint32_t backing;	/* enum ibv_peer_db_backing */
	uint32_t flags;		/* enum ibv_peer_db_caps_flags */
	/*
	 * Longest time from a peer's ring until the NIC notices it, in
	 * microseconds, when the NIC polls doorbells in software; 0 when the
	 * NIC notices at once (hardware) or the bound is unknown.
	 */
	uint32_t max_ring_delay_us;
	/*
	 * The proxy's cost: after each ring it sees, its thread keeps one CPU
	 * busy polling for this many microseconds; idle, it wakes every
	 * max_ring_delay_us.
	 */
	uint32_t proxy_spin_us;
	uint8_t reserved[28];
};

int ibv_peer_probe_db(struct ibv_qp *qp, const struct ibv_peer_desc *peer,
		      struct ibv_peer_db_caps *caps, size_t inlen);

const char *ibv_peer_db_method_str(enum ibv_peer_db_method method);
const char *ibv_peer_db_reason_str(enum ibv_peer_db_reason reason);

#ifdef __cplusplus
}
#endif

#endif /* INFINIBAND_PEER_DB_H */
