// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * The dma-buf importer: how a GPU driver should take an RDMA NIC's doorbell,
 * instead of pinning the PFN behind a user mapping (PeerMappingOverride).
 *
 * - Attach: dma_buf_dynamic_attach() with edu's struct device and
 *   importer ops that implement invalidate_mappings, so the exporter can
 *   take the doorbell back at any time (QP destroy, process exit, device
 *   removal) and the importer is told. allow_peer2peer is set: a doorbell in
 *   a NIC's BAR is a peer resource without struct pages.
 * - Map: dma_buf_map_attachment(DMA_FROM_DEVICE) under the reservation
 *   lock. The device only writes a doorbell, and a doorbell export may
 *   grant nothing else. The result is edu's DMA address of the doorbell: an
 *   IOVA behind the IOMMU.
 * - Ring by DMA: edu writes to that address. The transfer cannot be
 *   stopped once started, so it is published as a fence in the dma-buf's
 *   reservation object (DMA_RESV_USAGE_WRITE), which the exporter's
 *   revocation waits for, and invalidate_mappings lets it land before
 *   unmapping.
 * - Ring by store: the same attachment, plus dma_buf_vmap() of the buffer,
 *   under the reservation lock; the store is done under that lock too, so
 *   invalidate_mappings (called with it held) never races a store and can
 *   vunmap at once. This models a GPU store through its BAR aperture.
 * - Invalidation: unmap (after the in-flight DMA, if any) and vunmap
 *   within the callback, then map again from a work item. A map that fails
 *   with -ENODEV means the exporter revoked the dma-buf: the attachment is
 *   revoked for good, the context is told (poll, eventfd) and programs
 *   using it stop with -ENODEV. Any other invalidation (a move) is
 *   followed by a fresh mapping, as the 2019 p2p_map rule asks: a mapping
 *   that succeeded once succeeds again while the exporter is alive.
 *
 * Locking: state, sgt, map, fence and dma_addr are under the dma-buf's
 * reservation lock. Lock order: ctx->lock -> dmabuf->resv -> adev->dma_lock
 * is never taken under resv: a DMA ring drops resv before the transfer.
 */

#include <linux/dma-fence.h>
#include <linux/dma-resv.h>
#include <linux/slab.h>

#include "accel.h"

atomic_t accel_live_atts, accel_live_vmaps;

static struct workqueue_struct *accel_wq;

/* A ring waits this long for others' write fences on the buffer. */
#define ACCEL_FENCE_WAIT_MS	5000

static const char *accel_fence_driver_name(struct dma_fence *fence)
{
	return "p2p_accel";
}

static const char *accel_fence_timeline_name(struct dma_fence *fence)
{
	return "edu-dma";
}

/*
 * No .wait and no .release: a signalled fence drops its ops pointer
 * (dma_fence_signal_timestamp_locked()), so fences left in another
 * driver's reservation object do not pin this module.
 */
static const struct dma_fence_ops accel_fence_ops = {
	.get_driver_name = accel_fence_driver_name,
	.get_timeline_name = accel_fence_timeline_name,
};

static void accel_att_unmap_locked(struct accel_att *att)
{
	dma_resv_assert_held(att->dmabuf->resv);
	if (!iosys_map_is_null(&att->map)) {
		dma_buf_vunmap(att->dmabuf, &att->map);
		iosys_map_clear(&att->map);
		atomic_dec(&accel_live_vmaps);
	}
	if (att->sgt) {
		dma_buf_unmap_attachment(att->attach, att->sgt,
					 DMA_FROM_DEVICE);
		att->sgt = NULL;
	}
}

/*
 * Make sure the attachment is mapped for the device. Called under resv by
 * every ring and by the revalidation work. Returns 0, -ENODEV if the
 * exporter revoked the dma-buf (or it is being detached), or the map's
 * error (-ENOMEM, -EACCES for a direction the exporter does not grant).
 */
static int accel_att_map_locked(struct accel_att *att)
{
	struct sg_table *sgt;

	dma_resv_assert_held(att->dmabuf->resv);
	if (att->detached || att->state == P2P_ACCEL_ATTACH_REVOKED)
		return -ENODEV;
	if (att->state == P2P_ACCEL_ATTACH_MAPPED)
		return 0;

	sgt = dma_buf_map_attachment(att->attach, DMA_FROM_DEVICE);
	if (IS_ERR(sgt)) {
		if (PTR_ERR(sgt) == -ENODEV) {
			att->state = P2P_ACCEL_ATTACH_REVOKED;
			atomic64_inc(&att->ctx->adev->revocations);
			accel_ctx_notify_revoked(att->ctx, att->handle);
		}
		return PTR_ERR(sgt);
	}
	att->sgt = sgt;
	att->dma_addr = sg_dma_address(sgt->sgl);
	att->state = P2P_ACCEL_ATTACH_MAPPED;
	return 0;
}

/* The DMA address of byte @offset; the range is inside one segment. */
static dma_addr_t accel_att_dma_addr(struct accel_att *att, u64 offset)
{
	struct scatterlist *sg;
	unsigned int i;

	for_each_sgtable_dma_sg(att->sgt, sg, i) {
		if (offset < sg_dma_len(sg))
			return sg_dma_address(sg) + offset;
		offset -= sg_dma_len(sg);
	}
	return DMA_MAPPING_ERROR;	/* not reached: offsets are validated */
}

/*
 * Take resv with the attachment mapped and nobody else's write pending:
 * a dynamic importer must not access the buffer before the write fences
 * in its reservation object signalled.
 */
static int accel_att_lock_ready(struct accel_att *att)
{
	struct dma_resv *resv = att->dmabuf->resv;
	long t;
	int ret;

	for (;;) {
		dma_resv_lock(resv, NULL);
		ret = accel_att_map_locked(att);
		if (ret) {
			dma_resv_unlock(resv);
			return ret;
		}
		if (dma_resv_test_signaled(resv, DMA_RESV_USAGE_WRITE))
			return 0;
		dma_resv_unlock(resv);
		t = dma_resv_wait_timeout(resv, DMA_RESV_USAGE_WRITE, false,
					  msecs_to_jiffies(ACCEL_FENCE_WAIT_MS));
		if (t <= 0)
			return t ?: -ETIMEDOUT;
	}
}

/**
 * accel_att_ring_store() - ring through the dma-buf's kernel mapping
 * @att: the attachment
 * @offset: byte offset in the dma-buf, aligned to @width, validated
 * @value: stored little-endian
 * @width: 4 or 8
 *
 * The store engine.
 *
 * Return: 0, -ENODEV once revoked, -EOPNOTSUPP if the
 * exporter gives no kernel mapping (a BAR export has no vmap), or an error
 * of the map.
 */
int accel_att_ring_store(struct accel_att *att, u64 offset, u64 value,
			 u32 width)
{
	int ret;

	ret = accel_att_lock_ready(att);
	if (ret)
		return ret;
	if (iosys_map_is_null(&att->map)) {
		ret = dma_buf_vmap(att->dmabuf, &att->map);
		if (ret) {
			iosys_map_clear(&att->map);
			ret = ret == -EINVAL ? -EOPNOTSUPP : ret;
			goto out;
		}
		atomic_inc(&accel_live_vmaps);
	}
	/*
	 * The WQEs and the producer index were stored before the ring (the
	 * program's earlier ops): order them first. Pairs with the NIC's read
	 * side: rxe's doorbell engine loads the slot, then reads the queue's
	 * producer index and WQEs with acquire semantics (rxe_db_engine.c).
	 */
	smp_wmb();
	if (width == sizeof(u32))
		iosys_map_wr(&att->map, offset, u32,
			     (__force u32)cpu_to_le32(value));
	else
		iosys_map_wr(&att->map, offset, u64,
			     (__force u64)cpu_to_le64(value));
	atomic64_inc(&att->rings);
	atomic64_inc(&att->ctx->adev->store_rings);
out:
	dma_resv_unlock(att->dmabuf->resv);
	return ret;
}

/**
 * accel_att_ring_dma() - ring by edu DMA to the mapped address
 * @att: the attachment
 * @offset: byte offset in the dma-buf, aligned to @width, validated
 * @value: stored little-endian
 * @width: 4 or 8
 *
 * The DMA engine. The transfer is published as a write fence in the
 * reservation object before it starts, and signalled when it finished (or
 * failed), so that the exporter's revocation and invalidate_mappings wait
 * for it instead of unmapping under a running transfer. Sleeps ~200 ms.
 * Return: 0, -ENODEV once revoked, -EIO if edu did not finish.
 */
int accel_att_ring_dma(struct accel_att *att, u64 offset, u64 value,
		       u32 width)
{
	struct accel_dev *adev = att->ctx->adev;
	struct dma_resv *resv = att->dmabuf->resv;
	struct dma_fence *fence;
	dma_addr_t dst;
	int ret;

	fence = kzalloc_obj(*fence);
	if (!fence)
		return -ENOMEM;
	ret = accel_att_lock_ready(att);
	if (ret)
		goto err_free;
	ret = dma_resv_reserve_fences(resv, 1);
	if (ret) {
		dma_resv_unlock(resv);
		goto err_free;
	}
	dst = accel_att_dma_addr(att, offset);
	dma_fence_init(fence, &accel_fence_ops, NULL, adev->fence_context,
		       atomic64_inc_return(&adev->fence_seqno));
	dma_resv_add_fence(resv, fence, DMA_RESV_USAGE_WRITE);
	dma_fence_put(att->fence);
	att->fence = dma_fence_get(fence);
	dma_resv_unlock(resv);

	/* The doorbell's stores before the ring: see accel_att_ring_store() */
	smp_wmb();
	ret = accel_edu_write(adev, dst, value, width);
	if (ret)
		dma_fence_set_error(fence, ret);
	dma_fence_signal(fence);
	dma_fence_put(fence);
	if (!ret) {
		atomic64_inc(&att->rings);
		atomic64_inc(&adev->dma_rings);
	}
	return ret;

err_free:
	kfree(fence);
	return ret;
}

/**
 * accel_att_stale_dma() - fault injection: an edu DMA after the unmap
 * @att: an attachment that is no longer mapped
 * @offset: byte offset, validated by the caller
 * @value: what edu writes
 * @width: 4 or 8
 * @dma_addr: out: the address edu wrote to
 *
 * What a buggy importer (or a device that ignores its driver) does: DMA to
 * the address the mapping had. Behind an IOMMU the address is no longer
 * mapped, so the transfer faults (a DMAR fault) and writes nothing. Only
 * with fault_inject=1.
 *
 * Return: 0 once edu finished, -EBUSY while the attachment is still mapped,
 * -EIO if edu did not finish.
 */
int accel_att_stale_dma(struct accel_att *att, u64 offset, u64 value,
			u32 width, u64 *dma_addr)
{
	struct dma_resv *resv = att->dmabuf->resv;
	dma_addr_t dst;

	dma_resv_lock(resv, NULL);
	if (att->state == P2P_ACCEL_ATTACH_MAPPED || !att->dma_addr) {
		dma_resv_unlock(resv);
		return -EBUSY;
	}
	dst = att->dma_addr + offset;
	dma_resv_unlock(resv);
	*dma_addr = dst;
	return accel_edu_write(att->ctx->adev, dst, value, width);
}

bool accel_att_revoked(const struct accel_att *att)
{
	return READ_ONCE(att->state) == P2P_ACCEL_ATTACH_REVOKED;
}

/*
 * The exporter moves or revokes the buffer; resv is held. Stop every
 * access before returning, as dma_buf_invalidate_mappings() asks: the edu
 * transfer in flight, if any, cannot be stopped, so let it land (bounded:
 * edu finishes or times out, and the fence is signalled either way), then
 * unmap and vunmap. Whether this was a revocation is learnt by mapping
 * again, from the work item (a map from inside the exporter's invalidation
 * is not ours to make).
 */
static void accel_att_invalidate(struct dma_buf_attachment *attach)
{
	struct accel_att *att = attach->importer_priv;

	dma_resv_assert_held(attach->dmabuf->resv);
	if (att->state != P2P_ACCEL_ATTACH_MAPPED)
		return;
	if (att->fence)
		dma_fence_wait(att->fence, false);
	accel_att_unmap_locked(att);
	WRITE_ONCE(att->state, P2P_ACCEL_ATTACH_INVALID);
	att->invalidations++;
	queue_work(accel_wq, &att->revalidate);
}

static void accel_att_revalidate(struct work_struct *work)
{
	struct accel_att *att = container_of(work, struct accel_att,
					     revalidate);

	dma_resv_lock(att->dmabuf->resv, NULL);
	accel_att_map_locked(att);
	dma_resv_unlock(att->dmabuf->resv);
}

static const struct dma_buf_attach_ops accel_importer_ops = {
	.allow_peer2peer = true,
	.invalidate_mappings = accel_att_invalidate,
};

/**
 * accel_att_create() - attach a dma-buf to the context's edu device
 * @ctx: the context
 * @fd: a dma-buf file descriptor of the calling process
 * @handle: the attachment's handle in @ctx (a revocation found by the
 *	first map is reported under it)
 *
 * Attaches dynamically and maps once, so that an export the device cannot
 * use fails here with the exporter's error: -EACCES for a buffer that may
 * not be written by a peer, -EINVAL or -EOPNOTSUPP for a BAR that edu has
 * no peer-to-peer path to, -ENODEV for a revoked export.
 * Return: the attachment or an ERR_PTR.
 */
struct accel_att *accel_att_create(struct accel_ctx *ctx, int fd, u32 handle)
{
	struct accel_att *att;
	int ret;

	att = kzalloc_obj(*att);
	if (!att)
		return ERR_PTR(-ENOMEM);
	att->ctx = ctx;
	att->handle = handle;
	att->state = P2P_ACCEL_ATTACH_INVALID;
	INIT_WORK(&att->revalidate, accel_att_revalidate);

	att->dmabuf = dma_buf_get(fd);
	if (IS_ERR(att->dmabuf)) {
		ret = PTR_ERR(att->dmabuf);
		goto err_free;
	}
	att->attach = dma_buf_dynamic_attach(att->dmabuf, &ctx->adev->pdev->dev,
					     &accel_importer_ops, att);
	if (IS_ERR(att->attach)) {
		ret = PTR_ERR(att->attach);
		goto err_put;
	}
	dma_resv_lock(att->dmabuf->resv, NULL);
	ret = accel_att_map_locked(att);
	dma_resv_unlock(att->dmabuf->resv);
	if (ret)
		goto err_detach;
	atomic_inc(&accel_live_atts);
	return att;

err_detach:
	dma_buf_detach(att->dmabuf, att->attach);
err_put:
	dma_buf_put(att->dmabuf);
err_free:
	kfree(att);
	return ERR_PTR(ret);
}

/**
 * accel_att_destroy() - unmap, detach and free an attachment
 * @att: not used by a running program
 *
 * After the detach the exporter cannot call us any more; the work item is
 * flushed after that, and it maps nothing once detached is set.
 */
void accel_att_destroy(struct accel_att *att)
{
	dma_resv_lock(att->dmabuf->resv, NULL);
	att->detached = true;
	att->state = P2P_ACCEL_ATTACH_INVALID;
	if (att->fence)
		dma_fence_wait(att->fence, false);
	accel_att_unmap_locked(att);
	dma_resv_unlock(att->dmabuf->resv);

	dma_buf_detach(att->dmabuf, att->attach);
	cancel_work_sync(&att->revalidate);
	dma_fence_put(att->fence);
	dma_buf_put(att->dmabuf);
	kfree(att);
	atomic_dec(&accel_live_atts);
}

void accel_att_query(struct accel_att *att, struct p2p_accel_attach_query *q)
{
	dma_resv_lock(att->dmabuf->resv, NULL);
	q->state = att->state;
	q->size = att->dmabuf->size;
	q->dma_addr = att->dma_addr;
	q->invalidations = att->invalidations;
	q->vmapped = !iosys_map_is_null(&att->map);
	dma_resv_unlock(att->dmabuf->resv);
	q->rings = atomic64_read(&att->rings);
}

int accel_dmabuf_init(void)
{
	accel_wq = alloc_workqueue("p2p_accel", WQ_UNBOUND, 0);
	return accel_wq ? 0 : -ENOMEM;
}

void accel_dmabuf_exit(void)
{
	destroy_workqueue(accel_wq);
}
