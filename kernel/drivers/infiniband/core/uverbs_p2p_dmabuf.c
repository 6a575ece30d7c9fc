// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * dma-buf export of p2p mmap entries (see include/rdma/ib_p2p_mmap.h), the
 * core default for UVERBS_METHOD_DMABUF_ALLOC.
 *
 * BAR entries are exported as upstream does for driver ops: peer2peer
 * importers only, mapped through their P2PDMA provider. Host entries are
 * ordinary memory: any DMA-capable importer may attach, the pages are
 * dma_map'ed for the importer's device, and software importers get a CPU
 * mapping through vmap.
 *
 * Lifetime: the export shares ib_uverbs_dmabuf_file, its revocation and its
 * release with driver-op exports. Each DMA mapping and each vmap holds a
 * reference on priv->kref, so ib_uverbs_dmabuf_revoke() returns only after
 * every importer has unmapped and vunmapped. The export holds a reference
 * on the mmap entry until its uobject is destroyed, which happens after the
 * revoke. So under the dma_resv lock, !priv->revoked means the entry and its
 * backing are alive. attach runs without that lock and only looks at
 * priv->provider, which is set before the dma-buf exists.
 */

#include <linux/dma-buf-mapping.h>
#include <linux/dma-mapping.h>
#include <linux/dma-resv.h>
#include <linux/iosys-map.h>
#include <linux/scatterlist.h>
#include <rdma/ib_p2p_mmap.h>
#include "rdma_core.h"
#include "uverbs.h"

MODULE_IMPORT_NS("DMA_BUF");

/* The peer access a DMA direction needs, seen from the exported memory. */
static const u32 p2p_dir_access[] = {
	[DMA_BIDIRECTIONAL] = RDMA_P2P_PEER_READ | RDMA_P2P_PEER_WRITE,
	[DMA_TO_DEVICE] = RDMA_P2P_PEER_READ,
	[DMA_FROM_DEVICE] = RDMA_P2P_PEER_WRITE,
};

static struct ib_device *p2p_dmabuf_ibdev(struct ib_uverbs_dmabuf_file *priv)
{
	return priv->mmap_entry->ucontext->device;
}

static int uverbs_p2p_dmabuf_attach(struct dma_buf *dmabuf,
				    struct dma_buf_attachment *attachment)
{
	struct ib_uverbs_dmabuf_file *priv = dmabuf->priv;

	/* BAR pages have no struct page: only P2PDMA-aware importers. */
	if (priv->provider && !attachment->peer2peer)
		return -EOPNOTSUPP;

	return 0;
}

static struct sg_table *p2p_host_map(struct dma_buf_attachment *attachment,
				     struct rdma_user_mmap_entry *entry,
				     enum dma_data_direction dir)
{
	struct scatterlist *sg;
	struct sg_table *sgt;
	unsigned int i;
	int ret;

	sgt = kzalloc_obj(*sgt);
	if (!sgt)
		return ERR_PTR(-ENOMEM);

	ret = sg_alloc_table(sgt, entry->npages, GFP_KERNEL);
	if (ret)
		goto err_free;

	for_each_sgtable_sg(sgt, sg, i)
		sg_set_page(sg, entry->p2p.ops->get_page(entry, i), PAGE_SIZE,
			    0);

	ret = dma_map_sgtable(attachment->dev, sgt, dir, 0);
	if (ret)
		goto err_table;
	return sgt;

err_table:
	sg_free_table(sgt);
err_free:
	kfree(sgt);
	return ERR_PTR(ret);
}

static struct sg_table *
uverbs_p2p_dmabuf_map(struct dma_buf_attachment *attachment,
		      enum dma_data_direction dir)
{
	struct ib_uverbs_dmabuf_file *priv = attachment->dmabuf->priv;
	struct rdma_user_mmap_entry *entry;
	struct sg_table *sgt;

	dma_resv_assert_held(attachment->dmabuf->resv);

	if (priv->revoked)
		return ERR_PTR(-ENODEV);

	entry = priv->mmap_entry;
	if (!valid_dma_direction(dir) ||
	    (p2p_dir_access[dir] & ~entry->p2p.peer_access)) {
		ibdev_dbg(p2p_dmabuf_ibdev(priv),
			  "dmabuf: pgoff[%#lx] grants peer access %#x, map direction %d refused\n",
			  entry->start_pgoff, entry->p2p.peer_access, dir);
		return ERR_PTR(-EACCES);
	}

	if (priv->provider)
		sgt = dma_buf_phys_vec_to_sgt(attachment, priv->provider,
					      &priv->phys_vec, 1,
					      priv->phys_vec.len, dir);
	else
		sgt = p2p_host_map(attachment, entry, dir);
	if (IS_ERR(sgt))
		return sgt;

	kref_get(&priv->kref);
	return sgt;
}

static void uverbs_p2p_dmabuf_unmap(struct dma_buf_attachment *attachment,
				    struct sg_table *sgt,
				    enum dma_data_direction dir)
{
	struct ib_uverbs_dmabuf_file *priv = attachment->dmabuf->priv;

	dma_resv_assert_held(attachment->dmabuf->resv);

	if (priv->provider) {
		dma_buf_free_sgt(attachment, sgt, dir);
	} else {
		dma_unmap_sgtable(attachment->dev, sgt, dir, 0);
		sg_free_table(sgt);
		kfree(sgt);
	}
	kref_put(&priv->kref, ib_uverbs_dmabuf_done);
}

/* Pinning would defeat revocation: only dynamic importers may map. */
static int uverbs_p2p_dmabuf_pin(struct dma_buf_attachment *attach)
{
	return -EOPNOTSUPP;
}

static void uverbs_p2p_dmabuf_unpin(struct dma_buf_attachment *attach)
{
}

/*
 * A vmap is revoked like a DMA mapping: the importer must drop it from its
 * invalidate_mappings callback. dma_buf_vmap() names no attachment, so
 * insist that the dma-buf has an importer that can be told at all;
 * otherwise revocation would wait forever for a vunmap.
 */
static bool p2p_has_dynamic_importer(struct dma_buf *dmabuf)
{
	struct dma_buf_attachment *attach;

	list_for_each_entry(attach, &dmabuf->attachments, node)
		if (attach->importer_ops &&
		    attach->importer_ops->invalidate_mappings)
			return true;
	return false;
}

static int uverbs_p2p_dmabuf_vmap(struct dma_buf *dmabuf,
				  struct iosys_map *map)
{
	struct ib_uverbs_dmabuf_file *priv = dmabuf->priv;
	struct rdma_user_mmap_entry *entry;
	int ret;

	dma_resv_assert_held(dmabuf->resv);

	if (priv->revoked)
		return -ENODEV;

	entry = priv->mmap_entry;
	if (!p2p_has_dynamic_importer(dmabuf)) {
		ibdev_dbg(p2p_dmabuf_ibdev(priv),
			  "dmabuf: pgoff[%#lx] vmap refused, no importer obeys invalidation\n",
			  entry->start_pgoff);
		return -EINVAL;
	}

	ret = entry->p2p.ops->vmap(entry, map);
	if (ret)
		return ret;

	kref_get(&priv->kref);
	return 0;
}

static void uverbs_p2p_dmabuf_vunmap(struct dma_buf *dmabuf,
				     struct iosys_map *map)
{
	struct ib_uverbs_dmabuf_file *priv = dmabuf->priv;
	struct rdma_user_mmap_entry *entry = priv->mmap_entry;

	dma_resv_assert_held(dmabuf->resv);

	entry->p2p.ops->vunmap(entry, map);
	kref_put(&priv->kref, ib_uverbs_dmabuf_done);
}

static const struct dma_buf_ops uverbs_p2p_dmabuf_ops = {
	.attach = uverbs_p2p_dmabuf_attach,
	.map_dma_buf = uverbs_p2p_dmabuf_map,
	.unmap_dma_buf = uverbs_p2p_dmabuf_unmap,
	.pin = uverbs_p2p_dmabuf_pin,
	.unpin = uverbs_p2p_dmabuf_unpin,
	.vmap = uverbs_p2p_dmabuf_vmap,
	.vunmap = uverbs_p2p_dmabuf_vunmap,
	.release = uverbs_dmabuf_release,
};

/**
 * uverbs_dmabuf_get_entry() - Find the mmap entry a DMABUF_ALLOC names
 * @ucontext: the calling context; only its own entries can be exported
 * @offset: the mmap offset (bytes) userspace got for the entry
 *
 * The core default for ops.pgoff_to_mmap_entry. The offset must be the
 * start of an entry, as for mmap().
 *
 * Return: a referenced entry, or NULL.
 */
struct rdma_user_mmap_entry *
uverbs_dmabuf_get_entry(struct ib_ucontext *ucontext, off_t offset)
{
	if (offset < 0 || !PAGE_ALIGNED(offset))
		return NULL;

	return rdma_user_mmap_entry_get_pgoff(ucontext, offset >> PAGE_SHIFT);
}

/**
 * uverbs_p2p_dmabuf_init() - Describe a p2p entry's export
 * @priv: the export being created
 * @entry: a referenced p2p entry of the calling context
 * @exp_info: filled with the ops and size for dma_buf_export()
 *
 * Return: 0, or -EOPNOTSUPP when a BAR has no P2PDMA provider.
 */
int uverbs_p2p_dmabuf_init(struct ib_uverbs_dmabuf_file *priv,
			   struct rdma_user_mmap_entry *entry,
			   struct dma_buf_export_info *exp_info)
{
	int ret;

	/* The ops run before the handler would set it (attach, map). */
	priv->mmap_entry = entry;
	if (entry->p2p.ops->get_phys) {
		ret = entry->p2p.ops->get_phys(entry, &priv->phys_vec,
					       &priv->provider);
		if (ret) {
			ibdev_dbg(entry->ucontext->device,
				  "dmabuf: pgoff[%#lx] BAR has no P2PDMA provider\n",
				  entry->start_pgoff);
			return ret;
		}
	}

	exp_info->ops = &uverbs_p2p_dmabuf_ops;
	exp_info->size = entry->npages << PAGE_SHIFT;
	return 0;
}

/**
 * uverbs_dmabuf_revoke_ucontext() - Revoke every dma-buf export of a context
 * @ucontext: the context whose exports go away
 *
 * For rdma_user_mmap_disassociate(): the entries stay, but their pages may
 * vanish (device reset), so every importer is invalidated and waited for,
 * as when an entry is removed. Later exports of the same entries are
 * allowed. Called with the ufile's hw_destroy_rwsem held for write, which
 * is the same lock order as uobject destruction: hw_destroy_rwsem, then
 * dmabufs_lock.
 */
void uverbs_dmabuf_revoke_ucontext(struct ib_ucontext *ucontext)
{
	struct ib_uverbs_dmabuf_file *uverbs_dmabuf, *tmp;
	struct rdma_user_mmap_entry *entry;
	unsigned long idx = 0;

	while (true) {
		/* Same rule as rdma_user_mmap_entry_get_pgoff() */
		xa_lock(&ucontext->mmap_xa);
		entry = xa_find(&ucontext->mmap_xa, &idx, ULONG_MAX, XA_PRESENT);
		while (entry && !kref_get_unless_zero(&entry->ref)) {
			idx = entry->start_pgoff + entry->npages;
			entry = xa_find(&ucontext->mmap_xa, &idx, ULONG_MAX,
					XA_PRESENT);
		}
		xa_unlock(&ucontext->mmap_xa);
		if (!entry)
			return;

		mutex_lock(&entry->dmabufs_lock);
		list_for_each_entry_safe(uverbs_dmabuf, tmp, &entry->dmabufs,
					 dmabufs_elm) {
			list_del(&uverbs_dmabuf->dmabufs_elm);
			ib_uverbs_dmabuf_revoke(uverbs_dmabuf);
		}
		mutex_unlock(&entry->dmabufs_lock);

		idx = entry->start_pgoff + entry->npages;
		rdma_user_mmap_entry_put(entry);
	}
}
