/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * Peer-to-peer access to rdma_user_mmap_entry pages.
 *
 * A driver that inserts an mmap entry with rdma_user_mmap_entry_insert_bar()
 * or rdma_user_mmap_entry_insert_host() gets, from that one call, an entry
 * userspace can mmap() (rdma_user_mmap_p2p()) and export as a revocable
 * dma-buf (UVERBS_METHOD_DMABUF_ALLOC) without any further driver op.
 */

#ifndef IB_P2P_MMAP_H
#define IB_P2P_MMAP_H

#include <linux/bits.h>
#include <linux/errno.h>
#include <linux/types.h>

struct ib_ucontext;
struct iosys_map;
struct p2pdma_provider;
struct page;
struct pci_dev;
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
 * struct rdma_user_mmap_p2p_ops - what backs a p2p mmap entry
 *
 * Installed by the insert helpers, one const table per kind of backing; a
 * driver never provides one. Exactly one of @get_phys and @get_page is set:
 * it tells the dma-buf exporter how to map the entry for a DMA importer.
 * The callbacks are called with a reference on the entry held and never
 * after the entry's mmap_free.
 *
 * @get_phys: BAR backing: the physical range and its P2PDMA provider.
 *	Returns -EOPNOTSUPP when the device has no P2PDMA provider for the BAR.
 * @get_page: host backing: the page at page index @idx of the entry.
 * @vmap: a kernel CPU mapping of the whole entry, for software importers.
 * @vunmap: undo @vmap.
 * @mmap: map the whole entry into @vma (see rdma_user_mmap_p2p()).
 */
struct rdma_user_mmap_p2p_ops {
	int (*get_phys)(struct rdma_user_mmap_entry *entry,
			struct phys_vec *phys_vec,
			struct p2pdma_provider **provider);
	struct page *(*get_page)(struct rdma_user_mmap_entry *entry,
				 unsigned long idx);
	int (*vmap)(struct rdma_user_mmap_entry *entry, struct iosys_map *map);
	void (*vunmap)(struct rdma_user_mmap_entry *entry,
		       struct iosys_map *map);
	int (*mmap)(struct ib_ucontext *ucontext, struct vm_area_struct *vma,
		    struct rdma_user_mmap_entry *entry);
};

/**
 * struct rdma_user_mmap_p2p - per-entry p2p state, embedded in the entry
 *
 * Written once by the insert helpers before the entry becomes visible in
 * the mmap_xa, read-only afterwards, so readers need no lock. A zeroed
 * struct (the driver allocates its entries zeroed) means "not p2p".
 *
 * @ops: the backing's operations; NULL for an entry inserted without helper
 * @peer_access: RDMA_P2P_PEER_* a dma-buf importer may use
 * @cache: caching of BAR mappings
 * @bar: BAR backing (@ops->get_phys set)
 * @bar.pdev: PCI function that owns the BAR
 * @bar.provider: P2PDMA provider of the BAR, NULL when it has none
 * @bar.phys: CPU physical address of the first byte
 * @host: host memory backing (@ops->get_page set)
 * @host.kaddr: linear-map or vmalloc_user() address of the first byte
 */
struct rdma_user_mmap_p2p {
	const struct rdma_user_mmap_p2p_ops *ops;
	u32 peer_access;
	enum rdma_p2p_cache cache;
	union {
		struct {
			struct pci_dev *pdev;
			struct p2pdma_provider *provider;
			phys_addr_t phys;
		} bar;
		struct {
			void *kaddr;
		} host;
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
