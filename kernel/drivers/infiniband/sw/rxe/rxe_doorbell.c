// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * Per-process doorbell pages: what a hardware NIC calls a UAR. A user
 * context gets doorbell pages on demand, a QP created with
 * RXE_CREATE_QP_DOORBELL gets one slot (one cache line) in one of them, and
 * the page is an rdma_user_mmap_entry, so that the mmap database handles its
 * offset and lifetime and the core can export it as a dma-buf. The slot
 * format and the ring protocol are in include/uapi/rdma/rdma_user_rxe.h;
 * noticing rings is the engine's job (rxe_db_engine.c).
 *
 * A slot serves one QP in the life of its page. Whoever could ring it while
 * its QP lived may still do so after the QP is gone: a forked child that
 * inherited the mapping, a peer that holds the page's dma-buf. The engine
 * would judge such a ring against the queue of the slot's next owner, so
 * there is no next owner: a slot, once handed out, is retired with its QP
 * and never handed out again. A page whose slots are all retired is
 * removed from the mmap database, which revokes its dma-bufs and refuses
 * new mappings; the core frees it (rxe_db_mmap_free()) when its last
 * mapping and export are gone. So a context holds its pages with live QPs,
 * at most one page with slots still to give (uctx->open), and whatever
 * retired pages user space still maps or exports.
 *
 * RXE_CREATE_QP_DOORBELL_DEDICATED gives a QP a page of its own: its other
 * slots are never handed out, so exporting the page grants that QP only,
 * and the page goes with the QP.
 */

#include <linux/gfp.h>
#include <linux/mm.h>
#include <rdma/ib_p2p_mmap.h>
#include <rdma/uverbs_ioctl.h>

#include "rxe.h"

/* One doorbell page, inserted in the ucontext's mmap database. */
struct rxe_db_page {
	struct rxe_mmap_entry	mentry;		/* RXE_MMAP_DOORBELL */
	struct rxe_db_slot	*slots;		/* page_address() of the page */
	/* slots ever handed out; a bit is never cleared */
	DECLARE_BITMAP(taken, RXE_DB_SLOTS_PER_PAGE);
	unsigned int		nr_live;	/* taken slots whose QP exists */
};

static struct rxe_db_page *to_rxe_db_page(struct rxe_mmap_entry *mentry)
{
	return container_of(mentry, struct rxe_db_page, mentry);
}

/* A slot nobody rings: no ring pending, and kicks needed until armed. */
static void rxe_db_slot_reset(struct rxe_db_slot *slot)
{
	WRITE_ONCE(slot->sq_prod, cpu_to_le32(RXE_DB_IDLE));
	WRITE_ONCE(slot->flags, cpu_to_le32(RXE_DB_NEED_WAKEUP));
}

/**
 * rxe_db_parse_create_qp - read the optional create-QP request
 * @rxe: the device
 * @udata: the create-QP udata, or NULL for a kernel QP
 * @cmd: filled with the request; all zero if there is none
 *
 * An rdma-core that predates the request sends no udata in at all.
 *
 * Return: 0, -EOPNOTSUPP for unknown flags, or another negative errno for
 * a malformed request.
 */
int rxe_db_parse_create_qp(struct rxe_dev *rxe, struct ib_udata *udata,
			   struct rxe_create_qp_cmd *cmd)
{
	int err;

	memset(cmd, 0, sizeof(*cmd));
	if (!udata || !udata->inlen)
		return 0;

	err = ib_copy_validate_udata_in(udata, *cmd, reserved);
	if (err)
		return err;

	if (cmd->flags & ~RXE_CREATE_QP_DOORBELL_FLAGS) {
		rxe_dbg_dev(rxe, "unknown create-qp flags %#x\n", cmd->flags);
		return -EOPNOTSUPP;
	}
	if (cmd->reserved)
		return -EINVAL;
	/* a staged QP's slot is rung by a peer; every other flag implies a slot */
	if (cmd->flags & RXE_CREATE_QP_DOORBELL_STAGED)
		cmd->flags |= RXE_CREATE_QP_DOORBELL_PEER;
	if (cmd->flags & (RXE_CREATE_QP_DOORBELL_PEER |
			  RXE_CREATE_QP_DOORBELL_DEDICATED))
		cmd->flags |= RXE_CREATE_QP_DOORBELL;

	return 0;
}

static void rxe_db_page_free(struct rxe_db_page *page)
{
	free_page((unsigned long)page->slots);
	kfree(page);
}

/*
 * A new page, in the ucontext's mmap database as host memory that peers
 * may write (ring) once exported as a dma-buf.
 */
static struct rxe_db_page *rxe_db_page_alloc(struct ib_ucontext *ibuc)
{
	struct rxe_db_page *page;
	unsigned int i;
	int err;

	/* zeroed: the core's state in the entry starts out zero */
	page = kzalloc_obj(*page);
	if (!page)
		return ERR_PTR(-ENOMEM);
	page->mentry.kind = RXE_MMAP_DOORBELL;

	/*
	 * Page allocator memory, zeroed: it is mapped into user space and may
	 * be exported to peers, so nothing of the kernel's may be left in it.
	 */
	page->slots = (struct rxe_db_slot *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	if (!page->slots) {
		kfree(page);
		return ERR_PTR(-ENOMEM);
	}
	for (i = 0; i < RXE_DB_SLOTS_PER_PAGE; i++)
		rxe_db_slot_reset(&page->slots[i]);

	/* From here on the core owns the page: rxe_db_mmap_free() frees it. */
	err = rdma_user_mmap_entry_insert_host(ibuc, &page->mentry.rdma_entry,
					       page->slots, PAGE_SIZE,
					       RDMA_P2P_PEER_WRITE);
	if (err) {
		rxe_db_page_free(page);
		return ERR_PTR(err);
	}
	return page;
}

/*
 * Hand out a slot never handed out before: from the open page, or from a
 * new page, which a dedicated slot has to itself.
 */
static int rxe_db_slot_alloc(struct rxe_db_ucontext *uctx,
			     struct ib_ucontext *ibuc, struct rxe_qp_db *db)
{
	bool dedicated = db->flags & RXE_CREATE_QP_DOORBELL_DEDICATED;
	struct rxe_db_page *page;
	unsigned long idx;

	lockdep_assert_held(&uctx->lock);

	page = dedicated ? NULL : uctx->open;
	if (!page) {
		page = rxe_db_page_alloc(ibuc);
		if (IS_ERR(page))
			return PTR_ERR(page);
		if (dedicated)
			bitmap_fill(page->taken, RXE_DB_SLOTS_PER_PAGE);
		else
			uctx->open = page;
	}

	idx = dedicated ? 0 : find_first_zero_bit(page->taken,
						  RXE_DB_SLOTS_PER_PAGE);
	__set_bit(idx, page->taken);
	page->nr_live++;
	if (page == uctx->open &&
	    bitmap_full(page->taken, RXE_DB_SLOTS_PER_PAGE))
		uctx->open = NULL;

	db->uctx = uctx;
	db->page = page;
	db->index = idx;
	db->slot = &page->slots[idx];
	/* whatever the process wrote into the unused slot is not a ring */
	rxe_db_slot_reset(db->slot);
	return 0;
}

/*
 * Retire a QP's slot for good; remove its page if that was the last live
 * slot of a page with none left to give. Rings that still arrive in the
 * slot are never looked at (rxe_db_engine_detach()).
 */
static void rxe_db_slot_retire(struct rxe_qp_db *db)
{
	struct rxe_db_ucontext *uctx = db->uctx;
	struct rxe_db_page *page = db->page;
	bool remove;

	mutex_lock(&uctx->lock);
	/* what an unused slot looks like; a stale ringer that kicks fails */
	rxe_db_slot_reset(db->slot);
	remove = !--page->nr_live && page != uctx->open;
	mutex_unlock(&uctx->lock);

	/*
	 * Nobody else can reach the page now. Removal revokes its dma-bufs
	 * and may sleep on their importers: not under uctx->lock.
	 */
	if (remove)
		rdma_user_mmap_entry_remove(&page->mentry.rdma_entry);
}

/**
 * rxe_db_qp_create - give a new user QP its doorbell slot if it asked
 * @qp: the QP, with its send queue set up
 * @cmd: the request from rxe_db_parse_create_qp()
 * @udata: the create-QP udata
 *
 * Writes the doorbell fields of struct rxe_create_qp_resp, which the
 * request obliges udata out to cover. Nothing is written for a QP that did
 * not ask, so that an old rdma-core sees the response it always saw.
 *
 * Return: 0 or a negative errno; on error the QP has no slot.
 */
int rxe_db_qp_create(struct rxe_qp *qp, const struct rxe_create_qp_cmd *cmd,
		     struct ib_udata *udata)
{
	struct rxe_create_qp_resp __user *uresp;
	struct rxe_ucontext *uc;
	struct rxe_qp_db *db;
	u64 offset;
	int err;

	if (!(cmd->flags & RXE_CREATE_QP_DOORBELL))
		return 0;

	if (udata->outlen < offsetofend(struct rxe_create_qp_resp, db_flags)) {
		rxe_dbg_qp(qp, "doorbell asked for, but no room for the response\n");
		return -EINVAL;
	}
	uresp = udata->outbuf;
	uc = rdma_udata_to_drv_context(udata, struct rxe_ucontext, ibuc);

	db = kzalloc_obj(*db);
	if (!db)
		return -ENOMEM;
	db->qp = qp;
	db->flags = cmd->flags;

	mutex_lock(&uc->db.lock);
	err = rxe_db_slot_alloc(&uc->db, &uc->ibuc, db);
	mutex_unlock(&uc->db.lock);
	if (err)
		goto err_free;

	offset = rdma_user_mmap_get_offset(&db->page->mentry.rdma_entry);
	if (put_user(offset, &uresp->db_offset) ||
	    put_user(db->index, &uresp->db_index) ||
	    put_user(db->flags, &uresp->db_flags)) {
		err = -EFAULT;
		goto err_slot;
	}

	qp->db = db;
	err = rxe_db_engine_attach(qp);
	if (err) {
		qp->db = NULL;
		goto err_slot;
	}

	rxe_dbg_qp(qp, "doorbell slot %u at offset %#llx\n", db->index, offset);
	return 0;

err_slot:
	/* the offset and index may have reached user space: retire it */
	rxe_db_slot_retire(db);
err_free:
	kfree(db);
	return err;
}

/**
 * rxe_db_qp_destroy - retire a QP's doorbell slot
 * @qp: the QP being destroyed
 *
 * Called before the QP's resources go away. Once the engine has let go of
 * the slot, rings on it do nothing; the slot is retired, never to be
 * given to another QP, and its page goes if it has no live slot left.
 */
void rxe_db_qp_destroy(struct rxe_qp *qp)
{
	struct rxe_qp_db *db = qp->db;

	if (!db)
		return;

	rxe_db_engine_detach(qp);
	qp->db = NULL;
	rxe_db_slot_retire(db);
	kfree(db);
}

/**
 * rxe_db_ucontext_init - set up a user context for doorbell pages
 * @uc: the new user context
 */
void rxe_db_ucontext_init(struct rxe_ucontext *uc)
{
	mutex_init(&uc->db.lock);
	uc->db.open = NULL;
}

/**
 * rxe_db_ucontext_cleanup - remove a user context's doorbell pages
 * @uc: the user context being deallocated
 *
 * Every QP of the context is gone, and with the last QP of a page the
 * page was removed, unless it is the open one. Removing an entry revokes
 * its dma-bufs; the memory is freed by rxe_db_mmap_free() once the last
 * mapping and export are gone, which may be right now.
 */
void rxe_db_ucontext_cleanup(struct rxe_ucontext *uc)
{
	struct rxe_db_page *page = uc->db.open;

	uc->db.open = NULL;
	if (page) {
		WARN_ON(page->nr_live);
		rdma_user_mmap_entry_remove(&page->mentry.rdma_entry);
	}
	mutex_destroy(&uc->db.lock);
}

/**
 * rxe_db_mmap_free - free a doorbell page
 * @mentry: the page's mmap entry, removed and unreferenced
 *
 * The core calls this (through rxe_mmap_free()) once the page has been
 * removed and the last mapping and export are gone; the engine stopped
 * using its slots before that.
 */
void rxe_db_mmap_free(struct rxe_mmap_entry *mentry)
{
	rxe_db_page_free(to_rxe_db_page(mentry));
}
