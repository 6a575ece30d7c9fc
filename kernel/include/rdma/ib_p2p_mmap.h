/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * Peer-to-peer access to rdma_user_mmap_entry pages.
 *
 * A driver that inserts an mmap entry with rdma_user_mmap_entry_insert_bar()
 * or rdma_user_mmap_entry_insert_host() gets, from that one call, an entry
 * userspace can mmap() (rdma_user_mmap_p2p()) and export as a revocable
 * dma-buf (UVERBS_METHOD_DMABUF_ALLOC) without ops.mmap_get_pfns or
 * ops.pgoff_to_mmap_entry of its own.
 */

#ifndef IB_P2P_MMAP_H
#define IB_P2P_MMAP_H

#include <linux/bits.h>
#include <linux/errno.h>
#include <linux/types.h>

struct ib_device;
struct ib_ucontext;
struct p2pdma_provider;
struct page;
struct pci_dev;
struct phys_vec;
struct rdma_user_mmap_entry;
struct vm_area_struct;

/* Peer access an exported entry grants (a doorbell export is write-only by default). */
#define RDMA_P2P_PEER_READ	BIT(0)
#define RDMA_P2P_PEER_WRITE	BIT(1)
#define RDMA_P2P_PEER_MASK	(RDMA_P2P_PEER_READ | RDMA_P2P_PEER_WRITE)

/**
 * enum rdma_p2p_cache - CPU caching of a BAR entry's userspace mapping
 * @RDMA_P2P_CACHE_UC: uncached (pgprot_noncached()), for doorbell registers
 * @RDMA_P2P_CACHE_WC: write-combining (pgprot_writecombine()), for BlueFlame
 *	style pages written in bursts
 */
enum rdma_p2p_cache { RDMA_P2P_CACHE_UC, RDMA_P2P_CACHE_WC };

/**
 * enum rdma_p2p_backing - what backs an mmap entry's pages
 * @RDMA_P2P_NONE: inserted without a p2p helper; the driver maps and, with
 *	its own ops.mmap_get_pfns, exports it
 * @RDMA_P2P_BAR: a range of a PCI memory BAR (no struct page)
 * @RDMA_P2P_HOST: order-0 kernel pages, from the page allocator or vmalloc
 */
enum rdma_p2p_backing { RDMA_P2P_NONE, RDMA_P2P_BAR, RDMA_P2P_HOST };

/**
 * struct rdma_user_mmap_p2p - per-entry p2p state, embedded in the entry
 *
 * Written by the insert before the entry becomes visible in the mmap_xa,
 * read-only afterwards, so readers need no lock.
 *
 * @backing: what the pages are
 * @peer_access: RDMA_P2P_PEER_* a dma-buf importer may use
 * @cache: caching of BAR mappings
 * @core_owned: the core allocated the entry and its pages
 *	(rdma_user_mmap_core_host_alloc()): the core, not the driver, maps
 *	and frees it
 * @bar: BAR backing
 * @bar.provider: P2PDMA provider of the BAR, NULL when it has none
 * @bar.phys: CPU physical address of the first byte
 * @kaddr: host backing: linear-map or vmalloc address of the first byte
 */
struct rdma_user_mmap_p2p {
	enum rdma_p2p_backing backing;
	u32 peer_access;
	enum rdma_p2p_cache cache;
	bool core_owned;
	union {
		struct {
			struct p2pdma_provider *provider;
			phys_addr_t phys;
		} bar;
		void *kaddr;
	};
};

#if IS_ENABLED(CONFIG_INFINIBAND_USER_ACCESS)
int rdma_user_mmap_entry_insert_bar(struct ib_ucontext *ucontext,
				    struct rdma_user_mmap_entry *entry,
				    struct pci_dev *pdev, phys_addr_t phys,
				    size_t length, enum rdma_p2p_cache cache,
				    u32 peer_access);
int rdma_user_mmap_entry_insert_bar_range(struct ib_ucontext *ucontext,
					  struct rdma_user_mmap_entry *entry,
					  struct pci_dev *pdev,
					  phys_addr_t phys, size_t length,
					  enum rdma_p2p_cache cache,
					  u32 peer_access, u32 min_pgoff,
					  u32 max_pgoff);
int rdma_user_mmap_entry_insert_host(struct ib_ucontext *ucontext,
				     struct rdma_user_mmap_entry *entry,
				     void *kaddr, size_t length,
				     u32 peer_access);
int rdma_user_mmap_p2p(struct ib_ucontext *ucontext, struct vm_area_struct *vma,
		       struct rdma_user_mmap_entry *entry);
bool rdma_user_mmap_entry_is_p2p(const struct rdma_user_mmap_entry *entry);
int rdma_user_mmap_p2p_get_pfns(struct rdma_user_mmap_entry *entry,
				struct phys_vec *phys_vec,
				struct p2pdma_provider **provider);
struct page *rdma_user_mmap_p2p_page(const struct rdma_user_mmap_entry *entry,
				     unsigned long idx);
bool rdma_user_mmap_core_supported(struct ib_device *device);
struct rdma_user_mmap_entry *
rdma_user_mmap_core_host_alloc(struct ib_ucontext *ucontext, u32 peer_access);
int rdma_user_mmap_core(struct ib_ucontext *ucontext,
			struct vm_area_struct *vma);

#else
static inline int
rdma_user_mmap_entry_insert_bar(struct ib_ucontext *ucontext,
				struct rdma_user_mmap_entry *entry,
				struct pci_dev *pdev, phys_addr_t phys,
				size_t length, enum rdma_p2p_cache cache,
				u32 peer_access)
{
	return -EOPNOTSUPP;
}

static inline int
rdma_user_mmap_entry_insert_bar_range(struct ib_ucontext *ucontext,
				      struct rdma_user_mmap_entry *entry,
				      struct pci_dev *pdev, phys_addr_t phys,
				      size_t length, enum rdma_p2p_cache cache,
				      u32 peer_access, u32 min_pgoff,
				      u32 max_pgoff)
{
	return -EOPNOTSUPP;
}

static inline int
rdma_user_mmap_entry_insert_host(struct ib_ucontext *ucontext,
				 struct rdma_user_mmap_entry *entry,
				 void *kaddr, size_t length, u32 peer_access)
{
	return -EOPNOTSUPP;
}

static inline int rdma_user_mmap_p2p(struct ib_ucontext *ucontext,
				     struct vm_area_struct *vma,
				     struct rdma_user_mmap_entry *entry)
{
	return -EINVAL;
}

static inline bool
rdma_user_mmap_entry_is_p2p(const struct rdma_user_mmap_entry *entry)
{
	return false;
}
#endif

#endif /* IB_P2P_MMAP_H */
