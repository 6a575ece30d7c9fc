/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * libp2paccel: the userspace side of the peer accelerator (p2p_accel.ko),
 * a GPU stand-in that rings an RDMA NIC's doorbell through a dma-buf.
 *
 * An application opens a context on an accelerator, attaches the dma-buf of
 * a doorbell (ibv_peer_export_db(3)), registers the memory a program
 * touches (a flag, WQE templates, the QP's send queue from
 * ibv_peer_query_sq(3)), builds a program and submits it; the accelerator
 * runs it from a kernel thread, as a GPU runs a kernel, and rings the
 * doorbell by edu DMA or by a store through the dma-buf's kernel mapping.
 *
 * Conventions (as rdma-core's): calls return 0 or a positive errno, and set
 * errno too; structs filled by the library open with comp_mask and calls
 * that fill them take their size (inlen), so that they can grow.
 *
 * See p2paccel(3) and docs/accel-emulator.md.
 */
#ifndef P2PACCEL_H
#define P2PACCEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct p2paccel;		/* an accelerator context */
struct p2paccel_prog;		/* a program being built */

/* The first accelerator, /dev/p2p_accel0, when path is NULL. */
struct p2paccel *p2paccel_open(const char *path);
void p2paccel_close(struct p2paccel *acc);
/* For poll(): POLLIN when a program finished, POLLPRI on a revocation. */
int p2paccel_fd(const struct p2paccel *acc);

enum p2paccel_dev_flags {
	P2PACCEL_DEV_IOMMU		= 1 << 0, /* edu's DMA is translated */
	P2PACCEL_DEV_DMA_RING		= 1 << 1, /* P2PACCEL_RING_DMA works */
	P2PACCEL_DEV_FAULT_INJECT	= 1 << 2, /* p2paccel_stale_dma() works */
};

struct p2paccel_info {
	uint64_t comp_mask;	/* out: no bits defined yet */
	uint32_t flags;		/* enum p2paccel_dev_flags */
	uint32_t dma_mask_bits;
	uint32_t max_ops;
	uint32_t max_loop_depth;
	uint64_t max_steps;
	uint32_t max_delay_us;
	uint32_t max_timeout_us;
	uint32_t max_attach;
	uint32_t max_bufs;
	uint64_t max_buf_bytes;
	char pci_name[32];
	uint8_t reserved[32];
};

int p2paccel_query(struct p2paccel *acc, struct p2paccel_info *info,
		   size_t inlen);

/* ---- targets: dma-bufs ---- */

/* Attach a dma-buf (any exporter); *handle names it in programs. */
int p2paccel_attach(struct p2paccel *acc, int dmabuf_fd, uint32_t *handle);
int p2paccel_detach(struct p2paccel *acc, uint32_t handle);

enum p2paccel_attach_state {
	P2PACCEL_ATTACH_MAPPED		= 1,
	P2PACCEL_ATTACH_INVALID		= 2,
	P2PACCEL_ATTACH_REVOKED		= 3,
};

struct p2paccel_attach_attr {
	uint64_t comp_mask;	/* out: no bits defined yet */
	uint32_t state;		/* enum p2paccel_attach_state */
	uint32_t vmapped;	/* the store engine holds a kernel mapping */
	uint64_t size;		/* the dma-buf's size */
	uint64_t dma_addr;	/* edu's address of byte 0 (last one once unmapped) */
	uint64_t invalidations;
	uint64_t rings;
	uint8_t reserved[32];
};

int p2paccel_query_attach(struct p2paccel *acc, uint32_t handle,
			  struct p2paccel_attach_attr *attr, size_t inlen);

/* ---- memory a program touches ---- */

enum p2paccel_buf_flags {
	P2PACCEL_BUF_WRITE	= 1 << 0,	/* programs write it (a send queue) */
};

/* Pin [addr, addr + length) for programs; *handle names it. */
int p2paccel_reg_buf(struct p2paccel *acc, void *addr, size_t length,
		     uint32_t flags, uint32_t *handle);
int p2paccel_dereg_buf(struct p2paccel *acc, uint32_t handle);

/*
 * A send queue as ibv_peer_query_sq(3) describes it: wqe_cnt WQEs of
 * wqe_size bytes at buf, 32-bit little-endian wrapped producer and
 * consumer indices at prod_index and cons_index.
 */
struct p2paccel_sq_desc {
	uint64_t comp_mask;	/* in: no bits defined yet, must be 0 */
	void *buf;
	uint32_t wqe_size;
	uint32_t wqe_cnt;
	void *prod_index;
	const void *cons_index;
	uint8_t reserved[16];	/* in: must be 0 */
};

/*
 * Register the memory of a send queue (one buffer covering the ring and
 * both indices) and remember it as @prog's send queue.
 */
int p2paccel_prog_set_sq(struct p2paccel *acc, struct p2paccel_prog *prog,
			 const struct p2paccel_sq_desc *sq, size_t inlen);

/* ---- programs ---- */

struct p2paccel_prog *p2paccel_prog_new(void);
/* Frees the program, and the send queue's buffer registration if any. */
void p2paccel_prog_free(struct p2paccel *acc, struct p2paccel_prog *prog);
/* Index of the next op: the target of a later loop. */
uint32_t p2paccel_prog_here(const struct p2paccel_prog *prog);

int p2paccel_prog_wait(struct p2paccel_prog *prog, uint32_t buf,
		       uint64_t offset, uint32_t width, uint64_t value,
		       uint64_t mask, uint32_t timeout_us);
int p2paccel_prog_sq_post(struct p2paccel_prog *prog, uint32_t src_buf,
			  uint64_t src_offset, uint64_t src_stride,
			  uint32_t src_count, uint32_t timeout_us);

enum p2paccel_ring_flags {
	P2PACCEL_RING_STORE	= 0,		/* store through the vmap */
	P2PACCEL_RING_DMA	= 1 << 0,	/* edu DMA */
	P2PACCEL_RING_SQ_PROD	= 1 << 1,	/* value: the SQ producer index */
};

int p2paccel_prog_ring(struct p2paccel_prog *prog, uint32_t attach,
		       uint64_t offset, uint32_t width, uint64_t value,
		       uint32_t flags);
int p2paccel_prog_delay(struct p2paccel_prog *prog, uint32_t us);
/* Repeat ops [target, this loop] count times in all. */
int p2paccel_prog_loop(struct p2paccel_prog *prog, uint32_t target,
		       uint32_t count);
/*
 * Append an op exactly as given (struct p2p_accel_op of the uAPI), for
 * tests that forge what the builders never make.
 */
int p2paccel_prog_raw(struct p2paccel_prog *prog, const void *op,
		      size_t len);

/* Why the kernel refused a program (EINVAL from p2paccel_submit()). */
struct p2paccel_reject {
	uint64_t comp_mask;	/* out: no bits defined yet */
	uint32_t op;		/* the offending op, or the op count */
	uint32_t reason;	/* the uAPI's enum p2p_accel_reject */
	uint8_t reserved[16];
};

const char *p2paccel_reject_str(uint32_t reason);

/*
 * Validate and start @prog. Returns 0, EBUSY while the previous program
 * runs, EINVAL for a malformed program (*rej says where and why, if given),
 * EOPNOTSUPP for the DMA engine without an IOMMU.
 */
int p2paccel_submit(struct p2paccel *acc, struct p2paccel_prog *prog,
		    struct p2paccel_reject *rej, size_t inlen);

struct p2paccel_status {
	uint64_t comp_mask;	/* out: no bits defined yet */
	uint64_t seq;		/* the program's number in this context */
	int32_t status;		/* 0 or a negative errno: ENODEV revoked, ... */
	uint32_t failed_op;
	uint64_t steps;		/* ops executed */
	uint64_t rings;
	uint32_t sq_prod;	/* the send queue's producer index at the end */
	uint8_t reserved[28];
};

/*
 * Wait up to timeout_ms (0: do not wait) for the latest program. Returns 0
 * with *st, ETIME while it still runs, ENOENT if none was submitted.
 */
int p2paccel_wait(struct p2paccel *acc, int timeout_ms,
		  struct p2paccel_status *st, size_t inlen);
int p2paccel_cancel(struct p2paccel *acc);

/* ---- revocation ---- */

/* An eventfd counted up on every revocation; -1 removes it. */
int p2paccel_set_eventfd(struct p2paccel *acc, int eventfd);
/* The handles (bit n: handle n) revoked since the last call. */
int p2paccel_get_revoked(struct p2paccel *acc, uint64_t *handles);

/* ---- fault injection (module parameter fault_inject=1) ---- */

/*
 * Make edu DMA @value to the address an attachment had before it was
 * unmapped: behind an IOMMU this faults and writes nothing.
 */
int p2paccel_stale_dma(struct p2paccel *acc, uint32_t handle,
		       uint64_t offset, uint32_t width, uint64_t value,
		       uint64_t *dma_addr);

#ifdef __cplusplus
}
#endif

#endif /* P2PACCEL_H */
