// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * User memory for programs: pinned the way a GPU driver pins host memory it
 * is handed (cudaHostRegister()), long-term, and charged to the owner's
 * pinned_vm against RLIMIT_MEMLOCK as ib_umem_get() does. The kernel
 * thread reaches it through a vmap of the pinned pages, so a program never
 * takes a user address and never faults.
 *
 * A send queue to post into is registered the same way: rxe's queues are
 * vmalloc_user() memory mapped with remap_vmalloc_range(), ordinary pages
 * that can be pinned, so the accelerator writes WQEs into the very pages
 * the NIC reads.
 */

#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "accel.h"

atomic_t accel_live_bufs;
atomic64_t accel_pinned_pages;

static int accel_buf_pin(struct accel_buf *buf)
{
	unsigned int gup = FOLL_LONGTERM | (buf->writable ? FOLL_WRITE : 0);
	unsigned long start = buf->uaddr & PAGE_MASK, done = 0;
	long ret;

	while (done < buf->npages) {
		ret = pin_user_pages_fast(start + done * PAGE_SIZE,
					  min_t(unsigned long,
						buf->npages - done, INT_MAX),
					  gup, buf->pages + done);
		if (ret <= 0) {
			unpin_user_pages(buf->pages, done);
			return ret ?: -EFAULT;
		}
		done += ret;
	}
	return 0;
}

/**
 * accel_buf_create() - pin a user buffer for the context
 * @ctx: the context, whose mm is current's (checked by the ioctl)
 * @req: address, length and flags from userspace
 *
 * Return: the buffer or an ERR_PTR: -EINVAL for a bad range or flags,
 * -ENOMEM beyond the context's limit or RLIMIT_MEMLOCK, -EFAULT for memory
 * that cannot be pinned (I/O mappings, a read-only mapping asked for
 * writing).
 */
struct accel_buf *accel_buf_create(struct accel_ctx *ctx,
				   const struct p2p_accel_reg_buf *req)
{
	unsigned long lock_limit, npages, pinned;
	struct accel_buf *buf;
	u64 end;
	int ret;

	if (req->flags & ~P2P_ACCEL_BUF_WRITE || !req->length ||
	    check_add_overflow(req->addr, req->length, &end) ||
	    end > TASK_SIZE)
		return ERR_PTR(-EINVAL);
	npages = (PAGE_ALIGN(end) - (req->addr & PAGE_MASK)) >> PAGE_SHIFT;
	if ((ctx->pinned_pages + npages) << PAGE_SHIFT > ACCEL_MAX_BUF_BYTES)
		return ERR_PTR(-ENOMEM);

	lock_limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;
	pinned = atomic64_add_return(npages, &ctx->mm->pinned_vm);
	if (pinned > lock_limit && !capable(CAP_IPC_LOCK)) {
		ret = -ENOMEM;
		goto err_account;
	}

	buf = kzalloc_obj(*buf);
	if (!buf) {
		ret = -ENOMEM;
		goto err_account;
	}
	buf->uaddr = req->addr;
	buf->length = req->length;
	buf->writable = req->flags & P2P_ACCEL_BUF_WRITE;
	buf->npages = npages;
	buf->pages = kvmalloc_objs(*buf->pages, npages);
	if (!buf->pages) {
		ret = -ENOMEM;
		goto err_free;
	}
	ret = accel_buf_pin(buf);
	if (ret)
		goto err_pages;
	buf->vaddr = vmap(buf->pages, npages, VM_MAP, PAGE_KERNEL);
	if (!buf->vaddr) {
		ret = -ENOMEM;
		goto err_unpin;
	}
	buf->kva = buf->vaddr + offset_in_page(buf->uaddr);
	ctx->pinned_pages += npages;
	atomic64_add(npages, &accel_pinned_pages);
	atomic_inc(&accel_live_bufs);
	return buf;

err_unpin:
	unpin_user_pages(buf->pages, npages);
err_pages:
	kvfree(buf->pages);
err_free:
	kfree(buf);
err_account:
	atomic64_sub(npages, &ctx->mm->pinned_vm);
	return ERR_PTR(ret);
}

/* Unpin and free; the buffer is not used by a running program. */
void accel_buf_destroy(struct accel_ctx *ctx, struct accel_buf *buf)
{
	vunmap(buf->vaddr);
	unpin_user_pages_dirty_lock(buf->pages, buf->npages, buf->writable);
	atomic64_sub(buf->npages, &ctx->mm->pinned_vm);
	ctx->pinned_pages -= buf->npages;
	atomic64_sub(buf->npages, &accel_pinned_pages);
	atomic_dec(&accel_live_bufs);
	kvfree(buf->pages);
	kfree(buf);
}
