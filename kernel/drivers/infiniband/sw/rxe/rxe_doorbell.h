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
struct rxe_mmap_entry;
struct rxe_task;

#define RXE_DB_SLOTS_PER_PAGE	(PAGE_SIZE / RXE_DB_SLOT_SIZE)

/*
 * The RXE_CREATE_QP_* flags this kernel grants; rxe_db_parse_create_qp()
 * refuses the others with EOPNOTSUPP.
 */
#define RXE_CREATE_QP_DOORBELL_FLAGS	(RXE_CREATE_QP_DOORBELL |	\
					 RXE_CREATE_QP_DOORBELL_PEER |	\
					 RXE_CREATE_QP_DOORBELL_DEDICATED | \
					 RXE_CREATE_QP_DOORBELL_STAGED)

struct rxe_db_page;

/* Per user context: the doorbell pages of one process. */
struct rxe_db_ucontext {
	struct mutex		lock;	/* guards open and the pages' slots */
	/*
	 * The page new slots come from, while it has slots never handed
	 * out; every other page of the context has live QPs or is removed.
	 */
	struct rxe_db_page	*open;
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
void rxe_db_mmap_free(struct rxe_mmap_entry *mentry);

/* rxe_db_engine.c: the doorbell engine of a device */
int rxe_db_engine_attach(struct rxe_qp *qp);
void rxe_db_engine_detach(struct rxe_qp *qp);
bool rxe_db_kick(struct rxe_qp *qp);
void rxe_db_qp_modified(struct rxe_qp *qp);
bool rxe_db_engine_defer(struct rxe_task *task);
void rxe_db_engine_destroy(struct rxe_dev *rxe);

#endif /* RXE_DOORBELL_H */
