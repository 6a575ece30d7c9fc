/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 */

#ifndef RXE_DOORBELL_H
#define RXE_DOORBELL_H

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/ktime.h>
#include <rdma/ib_verbs.h>
#include <rdma/rdma_user_rxe.h>

struct rxe_dev;
struct rxe_qp;
struct rxe_ucontext;
struct rxe_db_engine;
struct rxe_task;

/*
 * Doorbell pages are rdma_user_mmap_entry objects, whose page offsets the
 * core hands out from 0 up. rxe's own queue offsets (rxe_create_mmap_info())
 * start at RXE_LEGACY_PGOFF_MIN and only grow, so rxe_mmap() tells the two
 * apart by the offset alone. The boundary still fits the 32-bit page offset
 * of mmap2() and the 44-bit byte offset of a 32-bit process with large file
 * support, which is how rdma-core is built.
 */
#define RXE_LEGACY_PGOFF_MIN	0x80000000UL
#define RXE_LEGACY_MMAP_OFFSET_MIN ((u64)RXE_LEGACY_PGOFF_MIN << PAGE_SHIFT)

#define RXE_DB_SLOTS_PER_PAGE	(PAGE_SIZE / RXE_DB_SLOT_SIZE)

/* Per user context: the doorbell pages of one process. */
struct rxe_db_ucontext {
	struct mutex		lock;	/* guards pages and their slot maps */
	struct list_head	pages;
};

/* One doorbell page, inserted in the ucontext's mmap database. */
struct rxe_db_page {
	struct rdma_user_mmap_entry	entry;
	struct list_head		list;	/* in rxe_db_ucontext.pages */
	struct rxe_db_slot		*slots;	/* page_address() of the page */
	DECLARE_BITMAP(used, RXE_DB_SLOTS_PER_PAGE);
};

/*
 * What the engine does with a slot (rxe_db_engine.c has the transitions).
 * Under the engine's lock.
 */
enum rxe_db_slot_state {
	/* nobody polls the slot; RXE_DB_NEED_WAKEUP is set in it */
	RXE_DB_SLOT_IDLE,
	/* on the engine's armed list and polled; RXE_DB_NEED_WAKEUP is clear */
	RXE_DB_SLOT_ARMED,
	/* the QP is being destroyed: the engine never looks at the slot again */
	RXE_DB_SLOT_DETACHED,
};

/*
 * The doorbell state of one QP. Everything but page, index and qp is
 * owned by the device's engine and guarded by its lock; the engine touches
 * the slot memory only under that lock, and only while the QP is attached.
 */
struct rxe_qp_db {
	struct rxe_qp		*qp;
	struct rxe_db_ucontext	*uctx;
	struct rxe_db_page	*page;
	struct rxe_db_slot	*slot;
	u32			index;
	u32			flags;		/* enum rxe_create_qp_flags */

	enum rxe_db_slot_state	state;
	struct list_head	armed;		/* engine.armed, iff ARMED */
	struct list_head	peer;		/* engine.peers, iff a peer slot not DETACHED */
	u32			uflags;		/* what we last wrote to slot->flags */
	ktime_t			last_ring;
};

/* rxe_doorbell.c: pages, slots, mmap, create-QP request and response */
int rxe_db_parse_create_qp(struct rxe_dev *rxe, struct ib_udata *udata,
			   struct rxe_create_qp_cmd *cmd);
int rxe_db_qp_create(struct rxe_qp *qp, const struct rxe_create_qp_cmd *cmd,
		     struct ib_udata *udata);
void rxe_db_qp_destroy(struct rxe_qp *qp);
void rxe_db_ucontext_init(struct rxe_ucontext *uc);
void rxe_db_ucontext_cleanup(struct rxe_ucontext *uc);
int rxe_db_mmap(struct ib_ucontext *ibuc, struct vm_area_struct *vma);
void rxe_db_mmap_free(struct rdma_user_mmap_entry *entry);

static inline bool rxe_db_is_db_pgoff(unsigned long pgoff)
{
	return pgoff < RXE_LEGACY_PGOFF_MIN;
}

/* rxe_db_engine.c: the doorbell engine of a device */
int rxe_db_engine_attach(struct rxe_qp *qp);
void rxe_db_engine_detach(struct rxe_qp *qp);
bool rxe_db_kick(struct rxe_qp *qp);
void rxe_db_qp_modified(struct rxe_qp *qp);
bool rxe_db_engine_defer(struct rxe_task *task);
void rxe_db_engine_destroy(struct rxe_dev *rxe);

#endif /* RXE_DOORBELL_H */
