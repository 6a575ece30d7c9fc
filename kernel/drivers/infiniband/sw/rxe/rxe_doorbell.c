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
 */

#include <linux/gfp.h>
#include <linux/mm.h>
#include <rdma/ib_p2p_mmap.h>
#include <rdma/uverbs_ioctl.h>

#include "rxe.h"

static struct rxe_db_page *to_rxe_db_page(struct rdma_user_mmap_entry *entry)
{
	return container_of(entry, struct rxe_db_page, entry);
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

	if (cmd->flags & ~(RXE_CREATE_QP_DOORBELL |
			   RXE_CREATE_QP_DOORBELL_PEER |
			   RXE_CREATE_QP_DOORBELL_STAGED)) {
		rxe_dbg_dev(rxe, "unknown create-qp flags %#x\n", cmd->flags);
		return -EOPNOTSUPP;
	}
	if (cmd->reserved)
		return -EINVAL;
	if (cmd->flags & RXE_CREATE_QP_DOORBELL_STAGED)
		cmd->flags |= RXE_CREATE_QP_DOORBELL_PEER;
	if (cmd->flags & RXE_CREATE_QP_DOORBELL_PEER)
		cmd->flags |= RXE_CREATE_QP_DOORBELL;

	return 0;
}

/*
 * Put a doorbell page in the ucontext's mmap database, as host memory that
 * peers may write (ring) once exported as a dma-buf. The core owns the
 * entry from now on: on error after the insert, the page is freed through
 * rxe_db_mmap_free().
 */
static int rxe_db_page_insert(struct ib_ucontext *ibuc, struct rxe_db_page *page)
{
	int err;

	err = rdma_user_mmap_entry_insert_host(ibuc, &page->entry, page->slots,
					       PAGE_SIZE, RDMA_P2P_PEER_WRITE);
	if (err)
		return err;

	/* Some 2^31 pages of one process: never, but keep the ranges apart. */
	if (!rxe_db_is_db_pgoff(page->entry.start_pgoff)) {
		rdma_user_mmap_entry_remove(&page->entry);
		return -ENOSPC;
	}
	return 0;
}

static struct rxe_db_page *rxe_db_page_alloc(struct ib_ucontext *ibuc)
{
	struct rxe_db_page *page;
	unsigned int i;
	int err;

	page = kzalloc_obj(*page);
	if (!page)
		return ERR_PTR(-ENOMEM);

	/*
	 * Page allocator memory, zeroed: it is mapped into user space and may
	 * be exported to peers, so nothing of the kernel's may be left in it.
	 */
	page->slots = (struct rxe_db_slot *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	if (!page->slots) {
		err = -ENOMEM;
		goto err_free;
	}
	for (i = 0; i < RXE_DB_SLOTS_PER_PAGE; i++)
		rxe_db_slot_reset(&page->slots[i]);

	err = rxe_db_page_insert(ibuc, page);
	if (err == -ENOSPC)
		return ERR_PTR(err);	/* already freed by the core */
	if (err)
		goto err_free_page;

	return page;

err_free_page:
	free_page((unsigned long)page->slots);
err_free:
	kfree(page);
	return ERR_PTR(err);
}

/* Find a free slot, allocating a page if all are full. Caller holds lock. */
static int rxe_db_slot_alloc(struct rxe_db_ucontext *uctx,
			     struct ib_ucontext *ibuc, struct rxe_qp_db *db)
{
	struct rxe_db_page *page;
	unsigned long idx;

	lockdep_assert_held(&uctx->lock);

	list_for_each_entry(page, &uctx->pages, list) {
		idx = find_first_zero_bit(page->used, RXE_DB_SLOTS_PER_PAGE);
		if (idx < RXE_DB_SLOTS_PER_PAGE)
			goto found;
	}

	page = rxe_db_page_alloc(ibuc);
	if (IS_ERR(page))
		return PTR_ERR(page);
	list_add_tail(&page->list, &uctx->pages);
	idx = 0;

found:
	__set_bit(idx, page->used);
	db->uctx = uctx;
	db->page = page;
	db->index = idx;
	db->slot = &page->slots[idx];
	rxe_db_slot_reset(db->slot);
	return 0;
}

static void rxe_db_slot_free(struct rxe_qp_db *db)
{
	struct rxe_db_ucontext *uctx = db->uctx;

	mutex_lock(&uctx->lock);
	/*
	 * The engine no longer looks at the slot (rxe_db_engine_detach()), so
	 * a late ring from the old owner just sits here until the next QP
	 * gets the slot, which starts from a reset slot.
	 */
	rxe_db_slot_reset(db->slot);
	__clear_bit(db->index, db->page->used);
	mutex_unlock(&uctx->lock);
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

	offset = rdma_user_mmap_get_offset(&db->page->entry);
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
	rxe_db_slot_free(db);
err_free:
	kfree(db);
	return err;
}

/**
 * rxe_db_qp_destroy - take a QP's doorbell slot back
 * @qp: the QP being destroyed
 *
 * Called before the QP's resources go away. Once the engine has let go of
 * the slot, rings on it do nothing, and it can be given to another QP of
 * the same process.
 */
void rxe_db_qp_destroy(struct rxe_qp *qp)
{
	struct rxe_qp_db *db = qp->db;

	if (!db)
		return;

	rxe_db_engine_detach(qp);
	qp->db = NULL;
	rxe_db_slot_free(db);
	kfree(db);
}

/**
 * rxe_db_ucontext_init - set up a user context for doorbell pages
 * @uc: the new user context
 */
void rxe_db_ucontext_init(struct rxe_ucontext *uc)
{
	mutex_init(&uc->db.lock);
	INIT_LIST_HEAD(&uc->db.pages);
}

/**
 * rxe_db_ucontext_cleanup - remove a user context's doorbell pages
 * @uc: the user context being deallocated
 *
 * Every QP of the context is gone, so no slot is in use. Removing an entry
 * revokes its dma-bufs; the memory is freed by rxe_db_mmap_free() once the
 * last mapping is gone, which may be right now.
 */
void rxe_db_ucontext_cleanup(struct rxe_ucontext *uc)
{
	struct rxe_db_page *page, *tmp;

	mutex_lock(&uc->db.lock);
	list_for_each_entry_safe(page, tmp, &uc->db.pages, list) {
		WARN_ON(!bitmap_empty(page->used, RXE_DB_SLOTS_PER_PAGE));
		list_del(&page->list);
		rdma_user_mmap_entry_remove(&page->entry);
	}
	mutex_unlock(&uc->db.lock);
	mutex_destroy(&uc->db.lock);
}

/**
 * rxe_db_mmap - map a doorbell page
 * @ibuc: the user context of the process calling mmap()
 * @vma: the VMA, whose vm_pgoff is in the doorbell range
 *
 * Return: 0, or -EINVAL if the offset is not one of this context's
 * doorbell pages or the VMA does not cover exactly that page.
 */
int rxe_db_mmap(struct ib_ucontext *ibuc, struct vm_area_struct *vma)
{
	struct rdma_user_mmap_entry *entry;
	int err;

	/* The database is per context: another process' offsets miss. */
	entry = rdma_user_mmap_entry_get(ibuc, vma);
	if (!entry)
		return -EINVAL;

	/*
	 * Maps the whole page and registers the VMA with the core, so that
	 * disassociation zaps it and the entry outlives it.
	 */
	err = rdma_user_mmap_p2p(ibuc, vma, entry);
	rdma_user_mmap_entry_put(entry);
	return err;
}

/**
 * rxe_db_mmap_free - free a doorbell page
 * @entry: the page's mmap entry, now unreferenced
 *
 * The core calls this once the page has been removed and the last mapping
 * and importer are gone; the engine stopped using it before that.
 */
void rxe_db_mmap_free(struct rdma_user_mmap_entry *entry)
{
	struct rxe_db_page *page = to_rxe_db_page(entry);

	free_page((unsigned long)page->slots);
	kfree(page);
}
