// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * p2p mmap entries: one insert call records what backs an
 * rdma_user_mmap_entry (a BAR range or kernel pages), its caching and the
 * access a peer gets, so that the core can mmap() it and the one dma-buf
 * exporter (uverbs_std_types_dmabuf.c) can export it without driver ops.
 *
 * Lifetime: the p2p state is written by the insert before the entry is
 * visible and never changes afterwards. The backing must stay valid until
 * the driver's mmap_free, which the core calls once the last reference is
 * gone: every VMA holds one, and every dma-buf export holds one until it has
 * been revoked and its DMA importers have unmapped. A CPU mapping (vmap) of
 * host pages holds page references instead, so a driver frees its pages in
 * mmap_free as usual and a late vmap holder keeps them until its vunmap.
 */

#include <linux/mm.h>
#include <linux/pci.h>
#include <linux/pci-p2pdma.h>
#include <linux/vmalloc.h>
#include <rdma/ib_verbs.h>
#include <rdma/ib_p2p_mmap.h>
#include "core_priv.h"

static int p2p_insert(struct ib_ucontext *ucontext,
		      struct rdma_user_mmap_entry *entry, size_t length,
		      struct rdma_user_mmap_p2p *p2p, u32 min_pgoff,
		      u32 max_pgoff)
{
	if (!entry || !length)
		return -EINVAL;

	if (p2p->peer_access & ~RDMA_P2P_PEER_MASK) {
		ibdev_dbg(ucontext->device,
			  "mmap: p2p entry with unknown peer access %#x\n",
			  p2p->peer_access);
		return -EINVAL;
	}
	return rdma_user_mmap_entry_insert_p2p(ucontext, entry, length,
					       min_pgoff, max_pgoff, p2p);
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
 * @entry: the driver's entry; the driver frees it in its ops.mmap_free as
 *	for rdma_user_mmap_entry_insert()
 * @pdev: PCI function whose memory BAR holds the pages
 * @phys: CPU physical address of the first page, page aligned
 * @length: bytes to map, rounded up to whole pages that must lie in one BAR
 * @cache: CPU caching of the userspace mapping
 * @peer_access: RDMA_P2P_PEER_* a dma-buf importer is granted; a doorbell
 *	is usually exported write-only
 * @min_pgoff: lowest mmap page offset the entry may get
 * @max_pgoff: highest mmap page offset the entry may get
 *
 * The p2p_ioremap style of inserting doorbell pages: the entry can be mapped
 * with rdma_user_mmap_p2p() and exported through UVERBS_METHOD_DMABUF_ALLOC
 * to peer-to-peer capable importers, using the BAR's P2PDMA provider. The
 * driver must have called pcim_p2pdma_init() on @pdev (at probe); a BAR
 * without a provider (non-mappable BARs) can still be mmapped, but an export
 * fails with -EOPNOTSUPP. An export has no CPU mapping (vmap): MMIO cannot
 * outlive its revocation safely.
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
	struct rdma_user_mmap_p2p p2p = {
		.backing = RDMA_P2P_BAR,
		.peer_access = peer_access,
		.cache = cache,
		.bar.phys = phys,
	};
	int bar;

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
	p2p.bar.provider = pcim_p2pdma_provider(pdev, bar);

	return p2p_insert(ucontext, entry, length, &p2p, min_pgoff, max_pgoff);
}
EXPORT_SYMBOL(rdma_user_mmap_entry_insert_bar_range);

/**
 * rdma_user_mmap_entry_insert_bar() - Insert an mmap entry for BAR pages
 * @ucontext: associated user context
 * @entry: the driver's entry
 * @pdev: PCI function whose memory BAR holds the pages
 * @phys: CPU physical address of the first page, page aligned
 * @length: bytes to map, rounded up to whole pages that must lie in one BAR
 * @cache: CPU caching of the userspace mapping
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

/*
 * A CPU mapping of the pages outlives revocation by holding a reference on
 * each page, so each must be refcounted on its own: vmalloc memory, or
 * order-0 (or split, as by alloc_pages_exact()) page allocator pages.
 */
static bool p2p_host_pages_ok(void *kaddr, size_t length)
{
	unsigned long i;

	if (!PAGE_ALIGNED(kaddr))
		return false;
	if (is_vmalloc_addr(kaddr))
		return true;
	for (i = 0; i < DIV_ROUND_UP(length, PAGE_SIZE); i++) {
		void *va = kaddr + i * PAGE_SIZE;
		struct page *page;

		if (!virt_addr_valid(va))
			return false;
		page = virt_to_page(va);
		if (PageSlab(page) || PageCompound(page) || !page_count(page))
			return false;
	}
	return true;
}

/**
 * rdma_user_mmap_entry_insert_host() - Insert an mmap entry for host pages
 * @ucontext: associated user context
 * @entry: the driver's entry
 * @kaddr: page aligned kernel address of the pages: vmalloc_user() memory,
 *	or order-0 page allocator pages (get_zeroed_page(),
 *	alloc_pages_exact()), not slab or compound memory
 * @length: bytes to map, rounded up to whole pages
 * @peer_access: RDMA_P2P_PEER_* a dma-buf importer is granted
 *
 * Like rdma_user_mmap_entry_insert_bar() for kernel memory. An export maps
 * the pages for any DMA-capable importer (peer2peer or not) and gives CPU
 * importers a mapping through dma_buf_vmap().
 *
 * The driver keeps ownership of the pages and frees them in its
 * ops.mmap_free: the core calls it only after every VMA is gone and every
 * DMA importer has been revoked and has unmapped. A CPU importer's vmap
 * holds page references, so pages it still maps are freed at its vunmap.
 *
 * Return: 0 on success, -EINVAL on bad arguments, -ENOMEM when the mmap_xa
 * has no room.
 */
int rdma_user_mmap_entry_insert_host(struct ib_ucontext *ucontext,
				     struct rdma_user_mmap_entry *entry,
				     void *kaddr, size_t length,
				     u32 peer_access)
{
	struct rdma_user_mmap_p2p p2p = {
		.backing = RDMA_P2P_HOST,
		.peer_access = peer_access,
		.kaddr = kaddr,
	};

	if (!p2p_host_pages_ok(kaddr, length)) {
		ibdev_dbg(ucontext->device,
			  "mmap: %p is not vmalloc or order-0 page memory\n",
			  kaddr);
		return -EINVAL;
	}
	return p2p_insert(ucontext, entry, length, &p2p, 0, U32_MAX);
}
EXPORT_SYMBOL(rdma_user_mmap_entry_insert_host);

/**
 * rdma_user_mmap_p2p_page() - A page of a host-memory p2p entry
 * @entry: an entry inserted with rdma_user_mmap_entry_insert_host(), alive
 * @idx: page index inside the entry, below entry->npages
 *
 * Return: the page; no reference is taken.
 */
struct page *rdma_user_mmap_p2p_page(const struct rdma_user_mmap_entry *entry,
				     unsigned long idx)
{
	void *va = entry->p2p.kaddr + idx * PAGE_SIZE;

	return is_vmalloc_addr(va) ? vmalloc_to_page(va) : virt_to_page(va);
}
EXPORT_SYMBOL(rdma_user_mmap_p2p_page);

/**
 * rdma_user_mmap_p2p_get_pfns() - The core's ops.mmap_get_pfns for BAR entries
 * @entry: an entry inserted with rdma_user_mmap_entry_insert_bar(), alive
 * @phys_vec: filled with the entry's physical range
 * @provider: filled with the BAR's P2PDMA provider
 *
 * Return: 0, or -EOPNOTSUPP when the entry is not a BAR entry or its BAR has
 * no P2PDMA provider (the driver did not call pcim_p2pdma_init()).
 */
int rdma_user_mmap_p2p_get_pfns(struct rdma_user_mmap_entry *entry,
				struct phys_vec *phys_vec,
				struct p2pdma_provider **provider)
{
	if (entry->p2p.backing != RDMA_P2P_BAR || !entry->p2p.bar.provider) {
		ibdev_dbg(entry->ucontext->device,
			  "dmabuf: pgoff[%#lx] is no BAR entry with a P2PDMA provider\n",
			  entry->start_pgoff);
		return -EOPNOTSUPP;
	}
	phys_vec->paddr = entry->p2p.bar.phys;
	phys_vec->len = entry->npages << PAGE_SHIFT;
	*provider = entry->p2p.bar.provider;
	return 0;
}
EXPORT_SYMBOL(rdma_user_mmap_p2p_get_pfns);

/*
 * Like rdma_user_mmap_io(), but page by page: vmalloc memory is not
 * physically contiguous. The mapping is VM_PFNMAP like an IO mapping, so
 * that disassociation zaps it the same way, and it takes no page
 * references: the VMA's reference on the entry keeps the pages alive.
 */
static int p2p_host_mmap(struct ib_ucontext *ucontext,
			 struct vm_area_struct *vma,
			 struct rdma_user_mmap_entry *entry)
{
	struct rdma_umap_priv *priv;
	unsigned long i;
	int ret;

	ret = rdma_user_mmap_check_vma(ucontext, vma,
				       entry->npages << PAGE_SHIFT);
	if (ret)
		return ret;

	priv = kzalloc_obj(*priv);
	if (!priv)
		return -ENOMEM;

	for (i = 0; i < entry->npages; i++) {
		ret = remap_pfn_range(vma, vma->vm_start + i * PAGE_SIZE,
				      page_to_pfn(rdma_user_mmap_p2p_page(entry, i)),
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
 * A doorbell or queue page is never code: PROT_EXEC is refused, and
 * VM_MAYEXEC cleared so that mprotect() cannot add it later.
 *
 * Return: 0 on success, -EINVAL for a non-p2p entry or a VMA that is not
 * shared or not the entry's size, -EPERM for an executable mapping,
 * -ENOMEM or -EAGAIN on mapping failure.
 */
int rdma_user_mmap_p2p(struct ib_ucontext *ucontext, struct vm_area_struct *vma,
		       struct rdma_user_mmap_entry *entry)
{
	pgprot_t prot;

	if (!rdma_user_mmap_entry_is_p2p(entry) ||
	    entry->ucontext != ucontext) {
		ibdev_dbg(ucontext->device,
			  "mmap: pgoff[%#lx] is not a p2p entry of this context\n",
			  vma->vm_pgoff);
		return -EINVAL;
	}
	if (vma->vm_flags & VM_EXEC) {
		ibdev_dbg(ucontext->device,
			  "mmap: pgoff[%#lx] refused: PROT_EXEC\n",
			  vma->vm_pgoff);
		return -EPERM;
	}
	vm_flags_clear(vma, VM_MAYEXEC);

	if (entry->p2p.backing == RDMA_P2P_HOST)
		return p2p_host_mmap(ucontext, vma, entry);

	if (entry->p2p.cache == RDMA_P2P_CACHE_WC)
		prot = pgprot_writecombine(vma->vm_page_prot);
	else
		prot = pgprot_noncached(vma->vm_page_prot);
	return rdma_user_mmap_io(ucontext, vma, PHYS_PFN(entry->p2p.bar.phys),
				 entry->npages << PAGE_SHIFT, prot, entry);
}
EXPORT_SYMBOL(rdma_user_mmap_p2p);

/**
 * rdma_user_mmap_entry_is_p2p() - Was the entry inserted with a p2p helper?
 * @entry: an mmap entry, or NULL
 *
 * Return: true if @entry can be mapped with rdma_user_mmap_p2p() and
 * exported as a dma-buf without driver ops.
 */
bool rdma_user_mmap_entry_is_p2p(const struct rdma_user_mmap_entry *entry)
{
	return entry && entry->p2p.backing != RDMA_P2P_NONE;
}
EXPORT_SYMBOL(rdma_user_mmap_entry_is_p2p);

/**
 * rdma_user_mmap_core_supported() - May the core add entries of its own?
 * @device: the device whose contexts would get them
 *
 * Core entries share the driver's mmap offsets, so the driver must take
 * every offset from the mmap_xa and decode none itself: it sets
 * ib_device_ops.mmap_core_entries and has no ops.pgoff_to_mmap_entry.
 *
 * Return: true if rdma_user_mmap_core_host_alloc() may insert into the
 * device's contexts.
 */
bool rdma_user_mmap_core_supported(struct ib_device *device)
{
	return device->ops.mmap_core_entries &&
	       !device->ops.pgoff_to_mmap_entry;
}
EXPORT_SYMBOL(rdma_user_mmap_core_supported);

/**
 * rdma_user_mmap_core_host_alloc() - Insert a host page that the core owns
 * @ucontext: associated user context
 * @peer_access: RDMA_P2P_PEER_* a dma-buf importer is granted
 *
 * For uverbs objects of the core that hand userspace a page of memory of
 * their own, such as a shadow doorbell (uverbs_std_types_shadow_db.c): one
 * zeroed page, charged to the caller's memory cgroup, inserted as with
 * rdma_user_mmap_entry_insert_host(), so that userspace maps it and exports
 * it as a revocable dma-buf like a driver's doorbell page. ib_uverbs_mmap()
 * maps such an entry itself (rdma_user_mmap_core()) and the core frees it
 * once the last reference is gone: the driver never sees it, in neither
 * ops.mmap nor ops.mmap_free. So only devices whose driver takes every mmap
 * offset from the mmap_xa, ib_device_ops.mmap_core_entries, may get them.
 *
 * The owner removes it with rdma_user_mmap_entry_remove(), which revokes its
 * dma-buf exports.
 *
 * Return: the entry, or an ERR_PTR(): -EOPNOTSUPP when the device does not
 * take core entries (rdma_user_mmap_core_supported()), -EINVAL, -ENOMEM.
 */
struct rdma_user_mmap_entry *
rdma_user_mmap_core_host_alloc(struct ib_ucontext *ucontext, u32 peer_access)
{
	struct rdma_user_mmap_p2p p2p = {
		.backing = RDMA_P2P_HOST,
		.peer_access = peer_access,
		.core_owned = true,
	};
	struct rdma_user_mmap_entry *entry;
	struct page *page;
	int ret;

	if (!rdma_user_mmap_core_supported(ucontext->device))
		return ERR_PTR(-EOPNOTSUPP);

	entry = kzalloc_obj(*entry, GFP_KERNEL_ACCOUNT);
	if (!entry)
		return ERR_PTR(-ENOMEM);
	page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!page) {
		kfree(entry);
		return ERR_PTR(-ENOMEM);
	}
	p2p.kaddr = page_address(page);

	ret = p2p_insert(ucontext, entry, PAGE_SIZE, &p2p, 0, U32_MAX);
	if (ret) {
		__free_page(page);
		kfree(entry);
		return ERR_PTR(ret);
	}
	return entry;
}
EXPORT_SYMBOL(rdma_user_mmap_core_host_alloc);

/*
 * The core's ops.mmap_free for its own entries, from
 * rdma_user_mmap_entry_free() once nothing references the entry.
 */
void rdma_user_mmap_core_free(struct rdma_user_mmap_entry *entry)
{
	free_page((unsigned long)entry->p2p.kaddr);
	kfree(entry);
}

/**
 * rdma_user_mmap_core() - Map an entry the core owns
 * @ucontext: associated user context
 * @vma: the vma of the mmap() call
 *
 * Called by ib_uverbs_mmap() before the driver's ops.mmap, which must not
 * see an entry of rdma_user_mmap_core_host_alloc().
 *
 * Context: under the disassociate_srcu, as the driver's ops.mmap.
 * Return: -ENOENT when @vma's offset is no live core entry (the driver's
 * ops.mmap decides), else what rdma_user_mmap_p2p() returns.
 */
int rdma_user_mmap_core(struct ib_ucontext *ucontext,
			struct vm_area_struct *vma)
{
	struct rdma_user_mmap_entry *entry;
	int ret;

	entry = rdma_user_mmap_entry_get_pgoff(ucontext, vma->vm_pgoff);
	if (!entry)
		return -ENOENT;
	if (entry->p2p.core_owned)
		ret = rdma_user_mmap_p2p(ucontext, vma, entry);
	else
		ret = -ENOENT;
	rdma_user_mmap_entry_put(entry);
	return ret;
}
EXPORT_SYMBOL(rdma_user_mmap_core);
