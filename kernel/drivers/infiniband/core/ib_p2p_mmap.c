// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * p2p mmap entries: one insert call gives an rdma_user_mmap_entry both its
 * userspace mmap() and everything the dma-buf exporter needs (backing, CPU
 * mapping, peer access), so that UVERBS_METHOD_DMABUF_ALLOC works for the
 * entry without driver ops.
 *
 * Lifetime: the p2p state is written before the entry is inserted into the
 * mmap_xa and never changes afterwards. The backing must stay valid until
 * the driver's mmap_free, which the core calls once the last reference is
 * gone: every VMA holds one, and every dma-buf export holds one until it has
 * been revoked and all its importers have unmapped and vunmapped.
 */

#include <linux/io.h>
#include <linux/iosys-map.h>
#include <linux/mm.h>
#include <linux/pci.h>
#include <linux/pci-p2pdma.h>
#include <linux/vmalloc.h>
#include <rdma/ib_verbs.h>
#include <rdma/ib_p2p_mmap.h>
#include "core_priv.h"

static int p2p_bar_get_phys(struct rdma_user_mmap_entry *entry,
			    struct phys_vec *phys_vec,
			    struct p2pdma_provider **provider)
{
	if (!entry->p2p.bar.provider)
		return -EOPNOTSUPP;

	phys_vec->paddr = entry->p2p.bar.phys;
	phys_vec->len = entry->npages << PAGE_SHIFT;
	*provider = entry->p2p.bar.provider;
	return 0;
}

static int p2p_bar_vmap(struct rdma_user_mmap_entry *entry,
			struct iosys_map *map)
{
	size_t len = entry->npages << PAGE_SHIFT;
	void __iomem *va;

	if (entry->p2p.cache == RDMA_P2P_CACHE_WC)
		va = ioremap_wc(entry->p2p.bar.phys, len);
	else
		va = ioremap(entry->p2p.bar.phys, len);
	if (!va)
		return -ENOMEM;

	iosys_map_set_vaddr_iomem(map, va);
	return 0;
}

static void p2p_bar_vunmap(struct rdma_user_mmap_entry *entry,
			   struct iosys_map *map)
{
	iounmap(map->vaddr_iomem);
}

static int p2p_bar_mmap(struct ib_ucontext *ucontext,
			struct vm_area_struct *vma,
			struct rdma_user_mmap_entry *entry)
{
	pgprot_t prot;

	if (entry->p2p.cache == RDMA_P2P_CACHE_WC)
		prot = pgprot_writecombine(vma->vm_page_prot);
	else
		prot = pgprot_noncached(vma->vm_page_prot);

	return rdma_user_mmap_io(ucontext, vma, PHYS_PFN(entry->p2p.bar.phys),
				 entry->npages << PAGE_SHIFT, prot, entry);
}

static const struct rdma_user_mmap_p2p_ops p2p_bar_ops = {
	.get_phys = p2p_bar_get_phys,
	.vmap = p2p_bar_vmap,
	.vunmap = p2p_bar_vunmap,
	.mmap = p2p_bar_mmap,
};

static struct page *p2p_host_get_page(struct rdma_user_mmap_entry *entry,
				      unsigned long idx)
{
	void *va = entry->p2p.host.kaddr + (idx << PAGE_SHIFT);

	if (is_vmalloc_addr(va))
		return vmalloc_to_page(va);
	return virt_to_page(va);
}

static int p2p_host_vmap(struct rdma_user_mmap_entry *entry,
			 struct iosys_map *map)
{
	/* Linear-map and vmalloc memory already have a kernel address. */
	iosys_map_set_vaddr(map, entry->p2p.host.kaddr);
	return 0;
}

static void p2p_host_vunmap(struct rdma_user_mmap_entry *entry,
			    struct iosys_map *map)
{
}

/*
 * Like rdma_user_mmap_io(), but page by page: vmalloc memory is not
 * physically contiguous. The mapping is VM_PFNMAP like an IO mapping, so
 * that disassociation can zap it the same way, and it takes no page
 * references: the VMA's reference on the entry keeps the pages alive.
 */
static int p2p_host_mmap(struct ib_ucontext *ucontext,
			 struct vm_area_struct *vma,
			 struct rdma_user_mmap_entry *entry)
{
	struct rdma_umap_priv *priv;
	unsigned long i;
	int ret;

	if (!(vma->vm_flags & VM_SHARED) ||
	    vma->vm_end - vma->vm_start != entry->npages << PAGE_SHIFT)
		return -EINVAL;

	/* Driver is using this wrong, must be called by ib_uverbs_mmap */
	if (WARN_ON(!vma->vm_file ||
		    vma->vm_file->private_data != ucontext->ufile))
		return -EINVAL;

	priv = kzalloc_obj(*priv);
	if (!priv)
		return -ENOMEM;

	for (i = 0; i < entry->npages; i++) {
		ret = remap_pfn_range(vma, vma->vm_start + (i << PAGE_SHIFT),
				      page_to_pfn(p2p_host_get_page(entry, i)),
				      PAGE_SIZE, vma->vm_page_prot);
		if (ret) {
			/* remap_pfn_range() already zapped what it mapped */
			kfree(priv);
			return -EAGAIN;
		}
	}

	rdma_umap_priv_init(priv, vma, entry);
	return 0;
}

static const struct rdma_user_mmap_p2p_ops p2p_host_ops = {
	.get_page = p2p_host_get_page,
	.vmap = p2p_host_vmap,
	.vunmap = p2p_host_vunmap,
	.mmap = p2p_host_mmap,
};

static int p2p_check_entry(struct ib_ucontext *ucontext,
			   struct rdma_user_mmap_entry *entry, size_t length,
			   u32 peer_access)
{
	if (!entry || !length)
		return -EINVAL;

	if (peer_access & ~RDMA_P2P_PEER_MASK) {
		ibdev_dbg(ucontext->device,
			  "mmap: p2p entry with unknown peer access %#x\n",
			  peer_access);
		return -EINVAL;
	}
	return 0;
}

/* The BAR of @pdev that holds all of [@phys, @phys + @length), or -1. */
static int p2p_phys_to_bar(struct pci_dev *pdev, phys_addr_t phys,
			   size_t length)
{
	int bar;

	for (bar = 0; bar < PCI_STD_NUM_BARS; bar++) {
		resource_size_t start = pci_resource_start(pdev, bar);
		resource_size_t end = pci_resource_end(pdev, bar);

		if (!(pci_resource_flags(pdev, bar) & IORESOURCE_MEM) ||
		    !start || !end)
			continue;
		if (phys >= start && phys <= end &&
		    length - 1 <= end - phys)
			return bar;
	}
	return -1;
}

/**
 * rdma_user_mmap_entry_insert_bar_range() - Insert an mmap entry for BAR pages
 * @ucontext: associated user context
 * @entry: the driver's entry, allocated zeroed; the driver frees it in its
 *	ops.mmap_free as for rdma_user_mmap_entry_insert()
 * @pdev: PCI function whose memory BAR holds the pages
 * @phys: CPU physical address of the first page, page aligned
 * @length: bytes to map, rounded up to whole pages that must lie in one BAR
 * @cache: CPU caching of the userspace and vmap mappings
 * @peer_access: RDMA_P2P_PEER_* a dma-buf importer is granted; a doorbell
 *	is usually exported write-only
 * @min_pgoff: lowest mmap page offset the entry may get
 * @max_pgoff: highest mmap page offset the entry may get
 *
 * The p2p_ioremap style of inserting doorbell pages: the entry can be mapped
 * with rdma_user_mmap_p2p() and exported through UVERBS_METHOD_DMABUF_ALLOC
 * to peer-to-peer capable importers, using the BAR's P2PDMA provider. The
 * driver calls pcim_p2pdma_init() on @pdev at probe; without a provider the
 * entry can still be mmapped but an export fails with -EOPNOTSUPP.
 *
 * @pdev must outlive the ib_device, as it does for every PCI driver.
 *
 * For drivers that encode a command in their mmap offsets, the entry is
 * placed between @min_pgoff and @max_pgoff, as with
 * rdma_user_mmap_entry_insert_range().
 *
 * Return: 0 on success, -EINVAL on bad arguments, -ENOMEM when the mmap_xa
 * has no room in the range.
 */
int rdma_user_mmap_entry_insert_bar_range(struct ib_ucontext *ucontext,
					  struct rdma_user_mmap_entry *entry,
					  struct pci_dev *pdev,
					  phys_addr_t phys, size_t length,
					  enum rdma_p2p_cache cache,
					  u32 peer_access, u32 min_pgoff,
					  u32 max_pgoff)
{
	int bar;
	int ret;

	ret = p2p_check_entry(ucontext, entry, length, peer_access);
	if (ret)
		return ret;

	if (!pdev || !PAGE_ALIGNED(phys) ||
	    (cache != RDMA_P2P_CACHE_UC && cache != RDMA_P2P_CACHE_WC))
		return -EINVAL;

	bar = p2p_phys_to_bar(pdev, phys, PAGE_ALIGN(length));
	if (bar < 0) {
		ibdev_dbg(ucontext->device,
			  "mmap: %pa+%#zx is not inside one memory BAR of %s\n",
			  &phys, length, pci_name(pdev));
		return -EINVAL;
	}

	entry->p2p.bar.pdev = pdev;
	entry->p2p.bar.phys = phys;
	entry->p2p.bar.provider = pcim_p2pdma_provider(pdev, bar);
	entry->p2p.cache = cache;
	entry->p2p.peer_access = peer_access;
	entry->p2p.ops = &p2p_bar_ops;

	/* The xa_lock in the insert publishes the p2p state with the entry. */
	ret = rdma_user_mmap_entry_insert_range(ucontext, entry, length,
						min_pgoff, max_pgoff);
	if (ret)
		entry->p2p.ops = NULL;
	return ret;
}
EXPORT_SYMBOL(rdma_user_mmap_entry_insert_bar_range);

/**
 * rdma_user_mmap_entry_insert_bar() - Insert an mmap entry for BAR pages
 * @ucontext: associated user context
 * @entry: the driver's entry, allocated zeroed
 * @pdev: PCI function whose memory BAR holds the pages
 * @phys: CPU physical address of the first page, page aligned
 * @length: bytes to map, rounded up to whole pages that must lie in one BAR
 * @cache: CPU caching of the userspace and vmap mappings
 * @peer_access: RDMA_P2P_PEER_* a dma-buf importer is granted
 *
 * rdma_user_mmap_entry_insert_bar_range() at any mmap offset.
 *
 * Return: 0 on success, -EINVAL on bad arguments, -ENOMEM when the mmap_xa
 * has no room.
 */
int rdma_user_mmap_entry_insert_bar(struct ib_ucontext *ucontext,
				    struct rdma_user_mmap_entry *entry,
				    struct pci_dev *pdev, phys_addr_t phys,
				    size_t length, enum rdma_p2p_cache cache,
				    u32 peer_access)
{
	return rdma_user_mmap_entry_insert_bar_range(ucontext, entry, pdev,
						     phys, length, cache,
						     peer_access, 0, U32_MAX);
}
EXPORT_SYMBOL(rdma_user_mmap_entry_insert_bar);

/**
 * rdma_user_mmap_entry_insert_host() - Insert an mmap entry for host pages
 * @ucontext: associated user context
 * @entry: the driver's entry, allocated zeroed
 * @kaddr: page aligned kernel address of the pages: from the page allocator
 *	(linear map, e.g. alloc_pages_exact()) or from vmalloc_user()
 * @length: bytes to map, rounded up to whole pages
 * @peer_access: RDMA_P2P_PEER_* a dma-buf importer is granted
 *
 * Like rdma_user_mmap_entry_insert_bar() for kernel memory. An export maps
 * the pages for any DMA-capable importer (peer2peer or not) and gives
 * software importers a CPU mapping through dma_buf_vmap().
 *
 * The driver keeps ownership of the pages and frees them in its
 * ops.mmap_free: the core calls it only after every VMA is gone and every
 * importer has been revoked and has unmapped and vunmapped.
 *
 * Return: 0 on success, -EINVAL on bad arguments, -ENOMEM when the mmap_xa
 * has no room.
 */
int rdma_user_mmap_entry_insert_host(struct ib_ucontext *ucontext,
				     struct rdma_user_mmap_entry *entry,
				     void *kaddr, size_t length,
				     u32 peer_access)
{
	int ret;

	ret = p2p_check_entry(ucontext, entry, length, peer_access);
	if (ret)
		return ret;

	if (!PAGE_ALIGNED(kaddr) ||
	    (!is_vmalloc_addr(kaddr) && !virt_addr_valid(kaddr))) {
		ibdev_dbg(ucontext->device,
			  "mmap: %p is neither linear-map nor vmalloc memory\n",
			  kaddr);
		return -EINVAL;
	}

	entry->p2p.host.kaddr = kaddr;
	entry->p2p.peer_access = peer_access;
	entry->p2p.ops = &p2p_host_ops;

	ret = rdma_user_mmap_entry_insert(ucontext, entry, length);
	if (ret)
		entry->p2p.ops = NULL;
	return ret;
}
EXPORT_SYMBOL(rdma_user_mmap_entry_insert_host);

/**
 * rdma_user_mmap_p2p() - Map a whole p2p entry into a process
 * @ucontext: associated user context
 * @vma: the vma of the mmap() call, as passed to the driver's ops.mmap
 * @entry: the entry from rdma_user_mmap_entry_get(), still referenced
 *
 * Called from the driver's ops.mmap for an entry inserted with
 * rdma_user_mmap_entry_insert_bar() or rdma_user_mmap_entry_insert_host().
 * Maps the entry with its backing's caching and registers the VMA, so that
 * disassociation zaps it. The VMA takes its own reference on @entry; the
 * driver puts the one it got as usual.
 *
 * Return: 0 on success, -EINVAL for a non-p2p entry or a VMA that is not
 * shared or not the entry's size, -ENOMEM or -EAGAIN on mapping failure.
 */
int rdma_user_mmap_p2p(struct ib_ucontext *ucontext, struct vm_area_struct *vma,
		       struct rdma_user_mmap_entry *entry)
{
	if (!rdma_user_mmap_entry_is_p2p(entry) ||
	    entry->ucontext != ucontext) {
		ibdev_dbg(ucontext->device,
			  "mmap: pgoff[%#lx] is not a p2p entry of this context\n",
			  vma->vm_pgoff);
		return -EINVAL;
	}
	return entry->p2p.ops->mmap(ucontext, vma, entry);
}
EXPORT_SYMBOL(rdma_user_mmap_p2p);

/**
 * rdma_user_mmap_entry_is_p2p() - Was the entry inserted with a p2p helper?
 * @entry: an mmap entry, or NULL
 *
 * Return: true if @entry carries p2p ops and can be exported as a dma-buf
 * without driver ops.
 */
bool rdma_user_mmap_entry_is_p2p(const struct rdma_user_mmap_entry *entry)
{
	return entry && entry->p2p.ops;
}
EXPORT_SYMBOL(rdma_user_mmap_entry_is_p2p);
