/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR Linux-OpenIB) */
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * The peer accelerator: a stand-in for a GPU that rings an RDMA NIC's
 * doorbell through a dma-buf. The kernel driver (p2p_accel.ko) binds qemu's
 * edu PCI device and gives each edu function a character device,
 * /dev/p2p_accelN. Every open() of it is an accelerator context, bound to the
 * opening process; handles name objects of that context only.
 *
 * A context
 *   - attaches dma-bufs (P2P_ACCEL_IOC_ATTACH) as a dynamic importer, with
 *     edu's struct device: the rings' targets, e.g. an exported doorbell;
 *   - registers user memory (P2P_ACCEL_IOC_REG_BUF), pinned as a GPU driver
 *     pins host memory it is given (cudaHostRegister()): flags to wait on,
 *     WQE templates, a QP's send queue;
 *   - submits a device program (P2P_ACCEL_IOC_SUBMIT), which a kernel thread
 *     runs the way a GPU runs a kernel, and waits for its status
 *     (P2P_ACCEL_IOC_WAIT, or poll() for EPOLLIN);
 *   - learns that an attachment was revoked by poll() (EPOLLPRI), an
 *     eventfd (P2P_ACCEL_IOC_SET_EVENTFD) and P2P_ACCEL_IOC_QUERY_ATTACH.
 *
 * A program is validated as a whole before any of it runs: a malformed one
 * fails P2P_ACCEL_IOC_SUBMIT with EINVAL, and the op and reason are written
 * back (struct p2p_accel_submit.bad_op, .bad_reason).
 *
 * Compatibility: every struct ends in or contains reserved fields that must
 * be zero, and flags the kernel does not know are refused with EINVAL, so
 * that fields and flags can be added.
 *
 * See docs/accel-emulator.md.
 */
#ifndef _UAPI_P2P_ACCEL_H
#define _UAPI_P2P_ACCEL_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define P2P_ACCEL_ABI_VERSION	1

/* ---- device information ---- */

enum p2p_accel_dev_flags {
	/* the edu DMA engine's addresses are translated by an IOMMU */
	P2P_ACCEL_DEV_IOMMU	= 1 << 0,
	/* P2P_ACCEL_RING_DMA is available (needs P2P_ACCEL_DEV_IOMMU) */
	P2P_ACCEL_DEV_DMA_RING	= 1 << 1,
	/* the module was loaded with fault_inject=1: P2P_ACCEL_IOC_STALE_DMA */
	P2P_ACCEL_DEV_FAULT_INJECT = 1 << 2,
};

struct p2p_accel_info {
	__u32 abi_version;	/* P2P_ACCEL_ABI_VERSION */
	__u32 flags;		/* enum p2p_accel_dev_flags */
	__u32 dma_mask_bits;	/* edu's DMA mask: 28; 64 without an IOMMU, where edu never DMAs */
	__u32 max_ops;		/* ops per program */
	__u32 max_loop_depth;	/* nested loops per program */
	__u32 max_delay_us;	/* one delay op */
	__u64 max_steps;	/* ops a program may execute, loops unrolled */
	__u32 max_timeout_us;	/* one wait op */
	__u32 max_attach;	/* attachments per context */
	__u32 max_bufs;		/* registered buffers per context */
	__u32 reserved;
	__u64 max_buf_bytes;	/* pinned bytes per context */
	char pci_name[32];	/* the edu function, e.g. "0000:03:00.0" */
};

/* ---- attaching a dma-buf ---- */

struct p2p_accel_attach {
	__s32 fd;		/* in: the dma-buf */
	__u32 flags;		/* in: none defined, must be 0 */
	__u32 handle;		/* out: names the attachment in programs */
	__u32 reserved;
	__u64 size;		/* out: the dma-buf's size in bytes */
};

enum p2p_accel_attach_state {
	/* mapped for the device: rings go through */
	P2P_ACCEL_ATTACH_MAPPED		= 1,
	/* the exporter invalidated the mapping; the next ring maps again */
	P2P_ACCEL_ATTACH_INVALID	= 2,
	/* the exporter revoked the dma-buf: rings fail with ENODEV */
	P2P_ACCEL_ATTACH_REVOKED	= 3,
};

struct p2p_accel_attach_query {
	__u32 handle;		/* in */
	__u32 state;		/* out: enum p2p_accel_attach_state */
	__u64 size;		/* out */
	/*
	 * out: the DMA address of the dma-buf's first byte as edu sees it (an
	 * IOVA behind an IOMMU), or the last one it had once unmapped; 0 if
	 * it was never mapped
	 */
	__u64 dma_addr;
	__u64 invalidations;	/* out: how often the exporter invalidated */
	__u64 rings;		/* out: rings that reached the dma-buf */
	__u32 vmapped;		/* out: 1 while the store engine has a vmap */
	__u32 reserved;
};

/* ---- registering user memory ---- */

enum p2p_accel_buf_flags {
	/* programs may write the buffer (a send queue); else read only */
	P2P_ACCEL_BUF_WRITE	= 1 << 0,
};

struct p2p_accel_reg_buf {
	__u64 addr;		/* in: user address, any alignment */
	__u64 length;		/* in: bytes, > 0 */
	__u32 flags;		/* in: enum p2p_accel_buf_flags */
	__u32 handle;		/* out */
};

/* ---- programs ---- */

enum p2p_accel_opcode {
	/*
	 * Wait until (word & mask) == value, the word being the width bytes
	 * at offset in buffer buf, host byte order; fail with ETIMEDOUT after
	 * timeout_us.
	 */
	P2P_ACCEL_OP_WAIT	= 1,
	/*
	 * Copy a WQE into the program's send queue (struct p2p_accel_sq):
	 * wqe_size bytes from buffer src_buf at
	 * src_offset + (n % src_count) * src_stride, n counting the op's
	 * executions from 0, into the slot at the queue's producer index
	 * (read from the queue each time), then publish the next producer
	 * index. Waits up to timeout_us for a free slot (ETIMEDOUT).
	 */
	P2P_ACCEL_OP_SQ_POST	= 2,
	/*
	 * Ring: store value (or, with P2P_ACCEL_RING_SQ_PROD, the send
	 * queue's producer index), width bytes little-endian, at offset in
	 * attachment attach, by the ring engine named by the op's flags.
	 */
	P2P_ACCEL_OP_RING	= 3,
	/* Do nothing for us microseconds. */
	P2P_ACCEL_OP_DELAY	= 4,
	/*
	 * Run the ops from index target up to this one count times in all,
	 * then go on. Loops nest; a loop body is never entered from outside.
	 */
	P2P_ACCEL_OP_LOOP	= 5,
};

enum p2p_accel_ring_flags {
	/* the store engine: a CPU store through the dma-buf's vmap */
	P2P_ACCEL_RING_STORE	= 0,
	/* the DMA engine: edu writes the value from its buffer by DMA */
	P2P_ACCEL_RING_DMA	= 1 << 0,
	/* the value is the send queue's producer index, not op.ring.value */
	P2P_ACCEL_RING_SQ_PROD	= 1 << 1,
};

struct p2p_accel_op {
	__u16 opcode;		/* enum p2p_accel_opcode */
	__u16 flags;		/* P2P_ACCEL_OP_RING: enum p2p_accel_ring_flags */
	__u32 reserved;
	union {
		struct {
			__u32 buf;
			__u32 width;	/* 4 or 8 */
			__u64 offset;
			__u64 value;
			__u64 mask;
			__u32 timeout_us;
			__u32 reserved;
		} wait;
		struct {
			__u32 src_buf;
			__u32 src_count; /* templates to cycle through, >= 1 */
			__u64 src_offset;
			__u64 src_stride;
			__u32 timeout_us;
			__u32 reserved[3];
		} sq_post;
		struct {
			__u32 attach;
			__u32 width;	/* 4 or 8 */
			__u64 offset;
			__u64 value;
			__u64 reserved[2];
		} ring;
		struct {
			__u32 us;
			__u32 reserved[9];
		} delay;
		struct {
			__u32 target;	/* index of the body's first op */
			__u32 count;	/* >= 1 */
			__u64 reserved[4];
		} loop;
	};
};

/*
 * The send queue that P2P_ACCEL_OP_SQ_POST writes, as the NIC describes it
 * (ibv_peer_query_sq(3)): a ring of wqe_cnt WQEs of wqe_size bytes and a
 * 32-bit little-endian producer and consumer index holding the slot of the
 * next WQE (0 .. wqe_cnt - 1), all in one registered writable buffer.
 */
struct p2p_accel_sq {
	__u32 buf;
	__u32 wqe_size;		/* 16 .. 4096, a multiple of 8 */
	__u32 wqe_cnt;		/* a power of two, 2 .. 65536 */
	__u32 reserved;
	__u64 ring_offset;	/* WQE 0 */
	__u64 prod_offset;	/* the producer index, written by SQ_POST */
	__u64 cons_offset;	/* the consumer index, read for free slots */
};

enum p2p_accel_submit_flags {
	/* sq describes the send queue of P2P_ACCEL_OP_SQ_POST */
	P2P_ACCEL_SUBMIT_SQ	= 1 << 0,
};

/* Why a program was refused (struct p2p_accel_submit.bad_reason). */
enum p2p_accel_reject {
	P2P_ACCEL_REJECT_NONE = 0,
	P2P_ACCEL_REJECT_SIZE,		/* n_ops is 0 or above max_ops */
	P2P_ACCEL_REJECT_RESERVED,	/* a reserved field or unknown flag */
	P2P_ACCEL_REJECT_OPCODE,	/* unknown opcode */
	P2P_ACCEL_REJECT_HANDLE,	/* no such buffer or attachment here */
	P2P_ACCEL_REJECT_BOUNDS,	/* an access beyond its object */
	P2P_ACCEL_REJECT_ALIGN,		/* a misaligned word or bad width */
	P2P_ACCEL_REJECT_ACCESS,	/* a write to a read-only buffer */
	P2P_ACCEL_REJECT_LIMIT,		/* a timeout, delay or count too big */
	P2P_ACCEL_REJECT_LOOP,		/* a loop target ahead, overlapping or too deep */
	P2P_ACCEL_REJECT_STEPS,		/* more than max_steps ops to execute */
	P2P_ACCEL_REJECT_NO_SQ,		/* a send-queue op without a queue */
	P2P_ACCEL_REJECT_SQ,		/* a malformed send queue */
	P2P_ACCEL_REJECT_ENGINE,	/* the DMA engine is not available */
};

struct p2p_accel_submit {
	__u64 ops;		/* in: user pointer to struct p2p_accel_op[n_ops] */
	__u32 n_ops;		/* in */
	__u32 flags;		/* in: enum p2p_accel_submit_flags */
	struct p2p_accel_sq sq;	/* in: with P2P_ACCEL_SUBMIT_SQ */
	__u64 seq;		/* out: the program's number in this context */
	__u32 bad_op;		/* out, on EINVAL: the offending op, or n_ops */
	__u32 bad_reason;	/* out, on EINVAL: enum p2p_accel_reject */
	__u64 reserved;
};

struct p2p_accel_wait {
	__u32 timeout_ms;	/* in: 0 only polls */
	__u32 flags;		/* in: none defined, must be 0 */
	__u64 seq;		/* out: the program this status is of */
	__s32 status;		/* out: 0 or a negative errno, see below */
	__u32 failed_op;	/* out: the op that failed, if status != 0 */
	__u64 steps;		/* out: ops executed */
	__u64 rings;		/* out: rings done */
	__u32 sq_prod;		/* out: the send queue's producer index at the end */
	__u32 reserved;
};

/*
 * Program status: 0 done; -ENODEV an attachment was revoked or the device
 * removed; -ETIMEDOUT a wait or a full send queue outlasted its timeout;
 * -ECANCELED P2P_ACCEL_IOC_CANCEL; -EIO the edu DMA engine did not finish.
 * P2P_ACCEL_IOC_WAIT itself fails with ETIME if the program still runs at
 * the timeout, ENOENT if none was submitted, EINTR on a signal.
 */

/* ---- revocation events ---- */

struct p2p_accel_events {
	__u64 revoked;		/* out: attachments found revoked since last asked */
	__u64 reserved[3];
};

/* ---- fault injection (module parameter fault_inject=1, for tests) ---- */

struct p2p_accel_stale_dma {
	__u32 handle;		/* in: an attachment that is no longer mapped */
	__u32 width;		/* in: 4 or 8 */
	__u64 offset;		/* in */
	__u64 value;		/* in */
	__u64 dma_addr;		/* out: where edu wrote (the stale address) */
};

#define P2P_ACCEL_IOC_MAGIC	0xE7

#define P2P_ACCEL_IOC_INFO	 _IOR(P2P_ACCEL_IOC_MAGIC, 0x00, struct p2p_accel_info)
#define P2P_ACCEL_IOC_ATTACH	_IOWR(P2P_ACCEL_IOC_MAGIC, 0x01, struct p2p_accel_attach)
#define P2P_ACCEL_IOC_DETACH	 _IOW(P2P_ACCEL_IOC_MAGIC, 0x02, __u32)
#define P2P_ACCEL_IOC_QUERY_ATTACH _IOWR(P2P_ACCEL_IOC_MAGIC, 0x03, struct p2p_accel_attach_query)
#define P2P_ACCEL_IOC_REG_BUF	_IOWR(P2P_ACCEL_IOC_MAGIC, 0x04, struct p2p_accel_reg_buf)
#define P2P_ACCEL_IOC_DEREG_BUF	 _IOW(P2P_ACCEL_IOC_MAGIC, 0x05, __u32)
#define P2P_ACCEL_IOC_SUBMIT	_IOWR(P2P_ACCEL_IOC_MAGIC, 0x06, struct p2p_accel_submit)
#define P2P_ACCEL_IOC_WAIT	_IOWR(P2P_ACCEL_IOC_MAGIC, 0x07, struct p2p_accel_wait)
#define P2P_ACCEL_IOC_CANCEL	  _IO(P2P_ACCEL_IOC_MAGIC, 0x08)
#define P2P_ACCEL_IOC_SET_EVENTFD _IOW(P2P_ACCEL_IOC_MAGIC, 0x09, __s32)
#define P2P_ACCEL_IOC_GET_EVENTS _IOR(P2P_ACCEL_IOC_MAGIC, 0x0a, struct p2p_accel_events)
#define P2P_ACCEL_IOC_STALE_DMA	_IOWR(P2P_ACCEL_IOC_MAGIC, 0x0b, struct p2p_accel_stale_dma)

#endif /* _UAPI_P2P_ACCEL_H */
