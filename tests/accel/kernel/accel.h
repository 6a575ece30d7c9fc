/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * p2p_accel: the peer accelerator, a GPU stand-in that rings an RDMA NIC's
 * doorbell through a dma-buf (docs/accel-emulator.md).
 *
 * Files by concern:
 *   accel_main.c    PCI driver for qemu's edu device, the character device
 *                   and its ioctls, device and context lifetime
 *   accel_edu.c     edu's DMA engine: registers, interrupt, transfers
 *   accel_dmabuf.c  the dma-buf importer: dynamic attach, map, vmap,
 *                   invalidation, revocation, and the two ring engines
 *   accel_buf.c     user memory pinned for programs
 *   accel_prog.c    device programs: validation, and the kernel thread that
 *                   runs them
 *
 * Lifetime: a struct accel_dev lives from probe until the last context that
 * opened it is closed (kref). A context (struct accel_ctx, one per open file)
 * owns its attachments, buffers and at most one program; the program's
 * kernel thread never outlives the context (closing the file cancels and
 * waits for it), and the context never outlives the device's resources
 * (remove tears every context down first, see accel_remove()).
 */
#ifndef P2P_ACCEL_H
#define P2P_ACCEL_H

#include <linux/completion.h>
#include <linux/dma-buf.h>
#include <linux/iosys-map.h>
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/wait.h>
#include <linux/xarray.h>

#include "p2p_accel.h"

/* Limits, reported by P2P_ACCEL_IOC_INFO. */
#define ACCEL_MAX_OPS		256
#define ACCEL_MAX_LOOP_DEPTH	4
#define ACCEL_MAX_STEPS		BIT_ULL(24)
#define ACCEL_MAX_DELAY_US	1000000
#define ACCEL_MAX_TIMEOUT_US	60000000
#define ACCEL_MAX_ATTACH	64	/* handles are bits of p2p_accel_events */
#define ACCEL_MAX_BUFS		64
#define ACCEL_MAX_BUF_BYTES	(64ULL << 20)

/* edu: a 28-bit DMA engine unless qemu's dma_mask property says otherwise */
#define ACCEL_EDU_DMA_BITS	28

struct accel_dev {
	struct pci_dev *pdev;
	void __iomem *mmio;
	int id;
	char name[32];
	struct miscdevice misc;
	struct kref kref;
	struct dentry *debugfs;

	/* DMA through the edu engine is translated by an IOMMU */
	bool iommu;

	/*
	 * The edu DMA engine runs one transfer at a time: dma_lock is held
	 * from programming its registers until the transfer finished or
	 * timed out. stage is a page the engine reads a ring's value from.
	 */
	struct mutex dma_lock;
	struct completion dma_done;
	void *stage;
	dma_addr_t stage_dma;
	u64 fence_context;
	atomic64_t fence_seqno;

	/* contexts, for remove; removed is set under lock, then never cleared */
	struct mutex lock;
	struct list_head ctxs;
	bool removed;

	/* counters, shown in debugfs */
	atomic64_t dma_xfers;
	atomic64_t dma_rings;
	atomic64_t store_rings;
	atomic64_t programs;
	atomic64_t programs_failed;
	atomic64_t programs_rejected;
	atomic64_t revocations;
};

/* One open file of /dev/p2p_accelN. */
struct accel_ctx {
	struct accel_dev *adev;
	struct list_head node;		/* in adev->ctxs */
	struct mm_struct *mm;		/* the opener's; buffers are pinned in it */

	/*
	 * lock: the handle tables, the current program pointer, submit and
	 * teardown. Never held while a program runs, nor taken by its thread.
	 */
	struct mutex lock;
	struct xarray atts;		/* struct accel_att, handles 0..63 */
	struct xarray bufs;		/* struct accel_buf */
	u64 pinned_pages;
	struct accel_prog *prog;	/* the latest program, running or done */
	u64 prog_seq;
	bool dead;			/* the device was removed */

	/* poll: EPOLLIN when a program finished, EPOLLPRI on revocation */
	wait_queue_head_t wq;
	spinlock_t ev_lock;		/* revoked, evfd */
	u64 revoked;			/* handles revoked since GET_EVENTS */
	struct eventfd_ctx *evfd;
};

/* A dma-buf attached to edu for a context. */
struct accel_att {
	struct accel_ctx *ctx;
	u32 handle;
	struct dma_buf *dmabuf;
	struct dma_buf_attachment *attach;
	struct work_struct revalidate;	/* after an invalidation */

	/* Under dmabuf->resv: */
	u32 state;			/* enum p2p_accel_attach_state */
	bool detached;			/* being detached: never map again */
	struct sg_table *sgt;
	dma_addr_t dma_addr;		/* first byte; kept once unmapped */
	struct iosys_map map;		/* the store engine's vmap */
	struct dma_fence *fence;	/* the last edu DMA ring's */
	u64 invalidations;

	atomic64_t rings;
};

/* User memory pinned for programs. */
struct accel_buf {
	u32 handle;
	u64 uaddr;
	u64 length;
	bool writable;
	struct page **pages;
	unsigned long npages;
	void *vaddr;			/* vmap of pages */
	void *kva;			/* the byte at uaddr */
};

struct accel_prog;

/* accel_main.c */
void accel_dev_put(struct accel_dev *adev);
void accel_ctx_notify_revoked(struct accel_ctx *ctx, u32 handle);

/* accel_edu.c */
int accel_edu_init(struct accel_dev *adev);
void accel_edu_fini(struct accel_dev *adev);
int accel_edu_write(struct accel_dev *adev, dma_addr_t dst, u64 value,
		    u32 width);

/* accel_dmabuf.c */
int accel_dmabuf_init(void);
void accel_dmabuf_exit(void);
struct accel_att *accel_att_create(struct accel_ctx *ctx, int fd, u32 handle);
void accel_att_destroy(struct accel_att *att);
void accel_att_query(struct accel_att *att, struct p2p_accel_attach_query *q);
int accel_att_ring_store(struct accel_att *att, u64 offset, u64 value,
			 u32 width);
int accel_att_ring_dma(struct accel_att *att, u64 offset, u64 value,
		       u32 width);
int accel_att_stale_dma(struct accel_att *att, u64 offset, u64 value,
			u32 width, u64 *dma_addr);
bool accel_att_revoked(const struct accel_att *att);
extern atomic_t accel_live_atts, accel_live_vmaps;

/* accel_buf.c */
struct accel_buf *accel_buf_create(struct accel_ctx *ctx,
				   const struct p2p_accel_reg_buf *req);
void accel_buf_destroy(struct accel_ctx *ctx, struct accel_buf *buf);
extern atomic_t accel_live_bufs;
extern atomic64_t accel_pinned_pages;

/* accel_prog.c */
int accel_prog_submit(struct accel_ctx *ctx, struct p2p_accel_submit *req);
int accel_prog_wait(struct accel_ctx *ctx, struct p2p_accel_wait *req);
void accel_prog_cancel(struct accel_ctx *ctx, int why);
bool accel_prog_running(struct accel_ctx *ctx);
bool accel_prog_uses(struct accel_ctx *ctx, const void *obj);
void accel_prog_release(struct accel_ctx *ctx);
extern atomic_t accel_live_progs;

#endif /* P2P_ACCEL_H */
