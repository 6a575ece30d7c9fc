// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * KTAP test of the p2p mmap-entry layer (include/rdma/ib_p2p_mmap.h).
 *
 * The module registers a minimal fake ib_device, "p2ptest%d", whose
 * ucontexts get these entries: a 2-page host entry from the page allocator
 * (peer read+write), a 1-page vmalloc_user() entry (peer write only), a
 * 1-page entry inserted without p2p ops and, when the module has bound two
 * ivshmem-plain PCI functions (guest option --pci-switch), two BAR entries
 * on a page each of the first one's shared-memory BAR: uncached (peer
 * read+write) and write-combining (peer write only). A faux device with a
 * DMA mask is the ib_device's DMA device and the test importer's device;
 * the second ivshmem function is the peer2peer importer of BAR exports.
 *
 * Userspace (tests/programs/p2p_mmap_ktest.c) creates contexts, mmaps and
 * exports entries through UVERBS_METHOD_DMABUF_ALLOC and drives the checks
 * by writing commands to /sys/kernel/debug/p2p_mmap_test/ctl:
 *
 *   import FD KIND      dynamic-attach a test importer, map, vmap, check data
 *                       (BAR: attach peer2peer, map to bus addresses, no vmap)
 *   hold FD KIND        vmap the export with no attachment, as vb2-vmalloc
 *                       does, and ignore every invalidation
 *   late KIND           the holder writes once more, checks its pages were
 *                       never freed under it, vunmaps and sees them freed if
 *                       the driver has freed its side
 *   attach FD           the same for another driver's doorbell export (rxe):
 *                       map for a peer write, vmap; "revoked 4 NAME" checks it
 *   write 4 OFF VAL     that importer stores the little-endian u32 VAL (hex)
 *                       at byte OFF of the buffer: a peer rings a doorbell
 *   detach              drop that attachment
 *   direction FD        map directions against a write-only entry
 *   umem FD KIND        register dma-buf umems of the fake ib_device (a
 *                       hardware importer: its DMA device maps the buffer)
 *                       with each kind of access: mapped in the direction
 *                       the access needs, or refused by a write-only entry
 *   remap KIND          invalidate without revoke; re-map and re-vmap succeed
 *   remove KIND         the driver removes the entry (QP destroy)
 *   disassociate        rdma_user_mmap_disassociate()
 *   unregister          unregister and register the ib_device again
 *   revoked KIND NAME   the importer was invalidated and unmapped; map and
 *                       vmap now fail with -ENODEV; drop the import
 *   freed KIND          mmap_free ran, after the importer had stopped
 *
 * KIND is 0 (host), 1 (vmalloc), 2 (BAR UC) or 3 (BAR WC). Each command
 * prints one KTAP result and
 * fails the write with the errno of a failed check. Module unload unregisters
 * the device, checks that a held import was revoked, and prints the plan.
 */

#include <linux/debugfs.h>
#include <linux/device/faux.h>
#include <linux/dma-buf.h>
#include <linux/dma-mapping.h>
#include <linux/dma-resv.h>
#include <linux/iosys-map.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/pci-p2pdma.h>
#include <linux/vmalloc.h>
#include <rdma/ib_umem.h>
#include <rdma/ib_verbs.h>
#include <rdma/ib_p2p_mmap.h>

MODULE_IMPORT_NS("DMA_BUF");

enum { KIND_HOST, KIND_VMALLOC, KIND_BAR, KIND_BAR_WC, KIND_PLAIN, NR_KINDS };

/* Importer slot for another driver's export (an rxe doorbell page). */
#define IMP_FOREIGN KIND_PLAIN

/* ivshmem-plain: its shared memory is BAR 2; the BAR entries use pages 0, 1. */
#define PTEST_IVSHMEM_BAR 2

static bool ptest_is_bar(int kind)
{
	return kind == KIND_BAR || kind == KIND_BAR_WC;
}

#define PTEST_MAGIC(kind) (0x5a5a0000u + (kind))

struct ptest_entry {
	struct rdma_user_mmap_entry rdma;
	int kind;
	void *kaddr;
	size_t size;
};

struct ptest_ucontext {
	struct ib_ucontext ibuc;
	struct ptest_entry *entries[NR_KINDS];
};

struct ptest_dev {
	struct ib_device ibdev;
};

/* A test importer: one dynamic attachment, its mapping and vmap. */
struct ptest_importer {
	struct dma_buf *dmabuf;
	struct dma_buf_attachment *attach;
	enum dma_data_direction dir;
	struct sg_table *sgt;
	struct iosys_map map;
	bool invalidated;
	int stop_seq;
};

/* A CPU importer that never attaches and ignores revocation. */
struct ptest_holder {
	struct dma_buf *dmabuf;
	struct iosys_map map;
	struct page *pages[2];
	unsigned int npages;
	int start_seq;
};

static struct {
	struct faux_device *fdev;
	struct device_dma_parameters dma_parms;
	struct ib_device *ibdev;
	struct dentry *dir;
	struct mutex lock; /* serializes commands */
	struct ptest_ucontext *last_uctx;
	int live_uctx;
	struct ptest_importer imp[NR_KINDS];
	struct ptest_holder holder[NR_KINDS];
	int free_seq[NR_KINDS];
	/* The BAR exporter and the peer2peer importer (ivshmem functions) */
	struct pci_dev *bar_pdev, *peer_pdev;
	void __iomem *bar_va;
	atomic_t seq;
	int tests;
	int failed;
} ptest;

static int ptest_result(int ret, const char *name, const char *arg)
{
	ptest.tests++;
	if (ret)
		ptest.failed++;
	pr_info("%sok %d %s%s%s\n", ret ? "not " : "", ptest.tests, name,
		arg ? "-" : "", arg ?: "");
	return ret;
}

#define ptest_expect(cond, ret, fmt, ...)				\
	({								\
		bool __ok = (cond);					\
		if (!__ok)						\
			pr_info("# %s: " fmt "\n", __func__, ##__VA_ARGS__); \
		__ok ? 0 : (ret);					\
	})

/* -------- the fake driver -------- */

static int ptest_query_device(struct ib_device *ibdev,
			      struct ib_device_attr *attr,
			      struct ib_udata *udata)
{
	return 0;
}

static int ptest_query_port(struct ib_device *ibdev, u32 port,
			    struct ib_port_attr *attr)
{
	attr->state = IB_PORT_DOWN;
	attr->max_mtu = IB_MTU_4096;
	attr->active_mtu = IB_MTU_4096;
	return 0;
}

static int ptest_get_port_immutable(struct ib_device *ibdev, u32 port,
				    struct ib_port_immutable *immutable)
{
	return 0;
}

static struct ptest_entry *ptest_entry_add(struct ptest_ucontext *uctx,
					   int kind)
{
	static const size_t sizes[NR_KINDS] = {
		[KIND_HOST] = 2 * PAGE_SIZE,
		[KIND_VMALLOC] = PAGE_SIZE,
		[KIND_BAR] = PAGE_SIZE,
		[KIND_BAR_WC] = PAGE_SIZE,
		[KIND_PLAIN] = PAGE_SIZE,
	};
	struct ptest_entry *e;
	phys_addr_t phys;
	int ret;

	if (ptest_is_bar(kind) && !ptest.bar_pdev)
		return NULL;

	e = kzalloc_obj(*e);
	if (!e)
		return ERR_PTR(-ENOMEM);
	e->kind = kind;
	e->size = sizes[kind];

	switch (kind) {
	case KIND_HOST:
		e->kaddr = alloc_pages_exact(e->size, GFP_KERNEL | __GFP_ZERO);
		break;
	case KIND_VMALLOC:
		e->kaddr = vmalloc_user(e->size);
		break;
	}
	if ((kind == KIND_HOST || kind == KIND_VMALLOC) && !e->kaddr) {
		kfree(e);
		return ERR_PTR(-ENOMEM);
	}

	switch (kind) {
	case KIND_HOST:
		ret = rdma_user_mmap_entry_insert_host(&uctx->ibuc, &e->rdma,
						       e->kaddr, e->size,
						       RDMA_P2P_PEER_READ |
						       RDMA_P2P_PEER_WRITE);
		break;
	case KIND_VMALLOC:
		ret = rdma_user_mmap_entry_insert_host(&uctx->ibuc, &e->rdma,
						       e->kaddr, e->size,
						       RDMA_P2P_PEER_WRITE);
		break;
	case KIND_BAR:
	case KIND_BAR_WC:
		phys = pci_resource_start(ptest.bar_pdev, PTEST_IVSHMEM_BAR) +
		       (kind - KIND_BAR) * PAGE_SIZE;
		ret = rdma_user_mmap_entry_insert_bar(&uctx->ibuc, &e->rdma,
						      ptest.bar_pdev, phys,
						      e->size,
						      kind == KIND_BAR ?
						      RDMA_P2P_CACHE_UC :
						      RDMA_P2P_CACHE_WC,
						      kind == KIND_BAR ?
						      RDMA_P2P_PEER_READ |
						      RDMA_P2P_PEER_WRITE :
						      RDMA_P2P_PEER_WRITE);
		break;
	default:
		ret = rdma_user_mmap_entry_insert(&uctx->ibuc, &e->rdma,
						  e->size);
		break;
	}
	if (ret) {
		if (kind == KIND_HOST)
			free_pages_exact(e->kaddr, e->size);
		else if (kind == KIND_VMALLOC)
			vfree(e->kaddr);
		kfree(e);
		return ERR_PTR(ret);
	}
	return e;
}

static int ptest_alloc_ucontext(struct ib_ucontext *ibuc,
				struct ib_udata *udata)
{
	struct ptest_ucontext *uctx =
		container_of(ibuc, struct ptest_ucontext, ibuc);
	struct ptest_entry *pad = NULL;
	int kind, ret = 0;

	mutex_lock(&ptest.lock);
	/*
	 * Shift the entries of a context that is alone by one page, so that
	 * a second context's entries sit at offsets that are not entry starts
	 * here: exporting the other context's offset must fail.
	 */
	if (!ptest.live_uctx) {
		pad = ptest_entry_add(uctx, KIND_PLAIN);
		if (IS_ERR(pad)) {
			ret = PTR_ERR(pad);
			goto out;
		}
	}
	for (kind = 0; kind < NR_KINDS; kind++) {
		struct ptest_entry *e = ptest_entry_add(uctx, kind);

		if (!e)
			continue;
		if (IS_ERR(e)) {
			ret = PTR_ERR(e);
			break;
		}
		uctx->entries[kind] = e;
	}
	/* Only the pad's insert reference: mmap_free runs on removal. */
	if (pad)
		rdma_user_mmap_entry_remove(&pad->rdma);
	ptest_result(ret, "insert-entries", NULL);
	if (ret) {
		for (kind = 0; kind < NR_KINDS; kind++)
			if (uctx->entries[kind])
				rdma_user_mmap_entry_remove(&uctx->entries[kind]->rdma);
		goto out;
	}
	ptest.live_uctx++;
	ptest.last_uctx = uctx;
out:
	mutex_unlock(&ptest.lock);
	return ret;
}

static void ptest_dealloc_ucontext(struct ib_ucontext *ibuc)
{
	struct ptest_ucontext *uctx =
		container_of(ibuc, struct ptest_ucontext, ibuc);
	int kind;

	/* No lock: may run under a command (unregister) that holds it. */
	for (kind = 0; kind < NR_KINDS; kind++)
		if (uctx->entries[kind])
			rdma_user_mmap_entry_remove(&uctx->entries[kind]->rdma);
	ptest.live_uctx--;
	if (ptest.last_uctx == uctx)
		ptest.last_uctx = NULL;
}

static void ptest_disassociate_ucontext(struct ib_ucontext *ibuc)
{
}

static int ptest_mmap(struct ib_ucontext *ibuc, struct vm_area_struct *vma)
{
	struct rdma_user_mmap_entry *entry;
	int ret;

	entry = rdma_user_mmap_entry_get(ibuc, vma);
	if (!entry)
		return -EINVAL;
	ret = rdma_user_mmap_p2p(ibuc, vma, entry);
	rdma_user_mmap_entry_put(entry);
	return ret;
}

static void ptest_mmap_free(struct rdma_user_mmap_entry *entry)
{
	struct ptest_entry *e = container_of(entry, struct ptest_entry, rdma);

	if (rdma_user_mmap_entry_is_p2p(entry)) {
		/*
		 * DMA importers stopped before this: the poisoned pages catch
		 * a late write under page_poison/slub_debug/KFENCE. A vmap
		 * holder keeps its page references past this free.
		 */
		ptest.free_seq[e->kind] = atomic_inc_return(&ptest.seq);
		if (e->kind == KIND_HOST)
			free_pages_exact(e->kaddr, e->size);
		else if (e->kind == KIND_VMALLOC)
			vfree(e->kaddr);
	}
	kfree(e);
}

static const struct ib_device_ops ptest_dev_ops = {
	.owner = THIS_MODULE,
	.driver_id = RDMA_DRIVER_UNKNOWN,
	.uverbs_abi_ver = 1,

	.alloc_ucontext = ptest_alloc_ucontext,
	.dealloc_ucontext = ptest_dealloc_ucontext,
	.disassociate_ucontext = ptest_disassociate_ucontext,
	.get_port_immutable = ptest_get_port_immutable,
	.mmap = ptest_mmap,
	.mmap_free = ptest_mmap_free,
	.query_device = ptest_query_device,
	.query_port = ptest_query_port,

	INIT_RDMA_OBJ_SIZE(ib_ucontext, ptest_ucontext, ibuc),
};

static int ptest_dev_add(void)
{
	struct ptest_dev *pdev;
	int ret;

	pdev = ib_alloc_device(ptest_dev, ibdev);
	if (!pdev)
		return -ENOMEM;
	ptest.ibdev = &pdev->ibdev;
	ptest.ibdev->node_type = RDMA_NODE_UNSPECIFIED;
	ptest.ibdev->phys_port_cnt = 1;
	ptest.ibdev->num_comp_vectors = 1;
	ib_set_device_ops(ptest.ibdev, &ptest_dev_ops);
	ret = ib_register_device(ptest.ibdev, "p2ptest%d", &ptest.fdev->dev);
	if (ret) {
		ib_dealloc_device(ptest.ibdev);
		ptest.ibdev = NULL;
	}
	return ret;
}

static void ptest_dev_del(void)
{
	if (!ptest.ibdev)
		return;
	ib_unregister_device(ptest.ibdev);
	ib_dealloc_device(ptest.ibdev);
	ptest.ibdev = NULL;
}

/* -------- the test importers -------- */

static void ptest_imp_stop(struct ptest_importer *imp)
{
	dma_resv_assert_held(imp->dmabuf->resv);
	if (!iosys_map_is_null(&imp->map)) {
		dma_buf_vunmap(imp->dmabuf, &imp->map);
		iosys_map_clear(&imp->map);
	}
	if (imp->sgt) {
		dma_buf_unmap_attachment(imp->attach, imp->sgt, imp->dir);
		imp->sgt = NULL;
	}
	imp->stop_seq = atomic_inc_return(&ptest.seq);
}

/* Called under the dma_resv lock: stop using the pages, right now. */
static void ptest_invalidate(struct dma_buf_attachment *attach)
{
	struct ptest_importer *imp = attach->importer_priv;

	/*
	 * A last write while still mapped. Were the pages freed before this
	 * callback, it would hit poisoned (page_poison) or unmapped (vfree)
	 * memory and the guest's log would report it.
	 */
	if (!iosys_map_is_null(&imp->map))
		iosys_map_wr(&imp->map, 2 * sizeof(u32), u32, 0xdeadbeef);
	imp->invalidated = true;
	ptest_imp_stop(imp);
}

static const struct dma_buf_attach_ops ptest_importer_ops = {
	.allow_peer2peer = false,
	.invalidate_mappings = ptest_invalidate,
};

static const struct dma_buf_attach_ops ptest_p2p_importer_ops = {
	.allow_peer2peer = true,
	.invalidate_mappings = ptest_invalidate,
};

/* BAR exports: the second ivshmem function attaches as a PCI peer. */
static int ptest_imp_attach(struct ptest_importer *imp, int fd, int kind)
{
	struct device *dev = &ptest.fdev->dev;
	const struct dma_buf_attach_ops *ops = &ptest_importer_ops;
	int ret;

	if (ptest_is_bar(kind)) {
		if (!ptest.peer_pdev)
			return -ENODEV;
		dev = &ptest.peer_pdev->dev;
		ops = &ptest_p2p_importer_ops;
	}
	memset(imp, 0, sizeof(*imp));
	imp->dmabuf = dma_buf_get(fd);
	if (IS_ERR(imp->dmabuf)) {
		ret = PTR_ERR(imp->dmabuf);
		imp->dmabuf = NULL;
		return ret;
	}
	imp->attach = dma_buf_dynamic_attach(imp->dmabuf, dev, ops, imp);
	if (IS_ERR(imp->attach)) {
		ret = PTR_ERR(imp->attach);
		dma_buf_put(imp->dmabuf);
		imp->dmabuf = NULL;
		return ret;
	}
	return 0;
}

static void ptest_imp_release(struct ptest_importer *imp)
{
	if (!imp->dmabuf)
		return;
	dma_resv_lock(imp->dmabuf->resv, NULL);
	if (imp->sgt || !iosys_map_is_null(&imp->map))
		ptest_imp_stop(imp);
	dma_resv_unlock(imp->dmabuf->resv);
	dma_buf_detach(imp->dmabuf, imp->attach);
	dma_buf_put(imp->dmabuf);
	imp->dmabuf = NULL;
}

/* The bus address of a BAR entry's page, as a PCI peer must see it. */
static dma_addr_t ptest_bar_bus_addr(int kind)
{
	return pci_bus_address(ptest.bar_pdev, PTEST_IVSHMEM_BAR) +
	       (kind - KIND_BAR) * PAGE_SIZE;
}

/*
 * Map (and vmap host memory) under the resv lock; check the mapping covers
 * the buffer, and for a BAR that it is the peer-to-peer bus address and
 * that there is no CPU mapping of it (no vmap op: a clean -EINVAL).
 */
static int ptest_imp_map(struct ptest_importer *imp, int kind,
			 enum dma_data_direction dir)
{
	struct scatterlist *sg;
	size_t len = 0;
	int i, ret;

	dma_resv_assert_held(imp->dmabuf->resv);
	imp->sgt = dma_buf_map_attachment(imp->attach, dir);
	if (IS_ERR(imp->sgt)) {
		ret = PTR_ERR(imp->sgt);
		imp->sgt = NULL;
		return ptest_expect(false, ret, "map: %d", ret);
	}
	imp->dir = dir;
	for_each_sgtable_dma_sg(imp->sgt, sg, i)
		len += sg_dma_len(sg);
	ret = ptest_expect(len == imp->dmabuf->size, -EIO,
			   "mapped %zu of %zu bytes", len, imp->dmabuf->size);
	if (ret)
		return ret;

	if (ptest_is_bar(kind)) {
		dma_addr_t want = ptest_bar_bus_addr(kind);

		ret = ptest_expect(sg_dma_address(imp->sgt->sgl) == want, -EIO,
				   "BAR mapped at %pad, bus address %pad",
				   &sg_dma_address(imp->sgt->sgl), &want);
		if (ret)
			return ret;
		ret = dma_buf_vmap(imp->dmabuf, &imp->map);
		return ptest_expect(ret == -EINVAL, -EIO, "BAR vmap: %d", ret);
	}
	ret = dma_buf_vmap(imp->dmabuf, &imp->map);
	return ptest_expect(!ret, ret, "vmap: %d", ret);
}

/* -------- the commands -------- */

/* Attach, map and vmap: a slot's importer in use, or nothing. */
static int ptest_imp_open(struct ptest_importer *imp, int fd, int kind,
			  enum dma_data_direction dir)
{
	int ret;

	ret = ptest_imp_attach(imp, fd, kind);
	if (ret)
		return ptest_expect(false, ret, "attach: %d", ret);

	dma_resv_lock(imp->dmabuf->resv, NULL);
	ret = ptest_imp_map(imp, kind, dir);
	dma_resv_unlock(imp->dmabuf->resv);
	if (ret)
		ptest_imp_release(imp);
	return ret;
}

/* A BAR export refuses importers that cannot do peer-to-peer DMA. */
static int ptest_bar_attach_rules(int fd)
{
	struct dma_buf_attachment *attach;
	struct dma_buf *dmabuf;
	struct sg_table *sgt;
	int ret;

	dmabuf = dma_buf_get(fd);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	attach = dma_buf_dynamic_attach(dmabuf, &ptest.fdev->dev,
					&ptest_importer_ops, NULL);
	ret = ptest_expect(PTR_ERR_OR_ZERO(attach) == -EOPNOTSUPP, -EIO,
			   "non-peer2peer importer attached: %d",
			   PTR_ERR_OR_ZERO(attach));
	if (!IS_ERR(attach))
		dma_buf_detach(dmabuf, attach);

	/* peer2peer, but not a PCI device: no P2PDMA path to the BAR */
	attach = dma_buf_dynamic_attach(dmabuf, &ptest.fdev->dev,
					&ptest_p2p_importer_ops, NULL);
	if (IS_ERR(attach)) {
		ret = ptest_expect(false, PTR_ERR(attach), "attach: %ld",
				   PTR_ERR(attach));
	} else {
		dma_resv_lock(dmabuf->resv, NULL);
		sgt = dma_buf_map_attachment(attach, DMA_FROM_DEVICE);
		if (!IS_ERR(sgt))
			dma_buf_unmap_attachment(attach, sgt, DMA_FROM_DEVICE);
		dma_resv_unlock(dmabuf->resv);
		ret = ret ?: ptest_expect(PTR_ERR_OR_ZERO(sgt) == -EINVAL, -EIO,
					  "unreachable peer mapped: %d",
					  PTR_ERR_OR_ZERO(sgt));
		dma_buf_detach(dmabuf, attach);
	}
	dma_buf_put(dmabuf);
	return ret;
}

static int ptest_cmd_import(int fd, int kind)
{
	static const enum dma_data_direction dirs[] = {
		[KIND_HOST] = DMA_BIDIRECTIONAL,
		[KIND_VMALLOC] = DMA_FROM_DEVICE,
		[KIND_BAR] = DMA_BIDIRECTIONAL,
		[KIND_BAR_WC] = DMA_FROM_DEVICE,
	};
	struct ptest_importer *imp = &ptest.imp[kind];
	void __iomem *bar = NULL;
	u32 seen;
	int ret;

	if (ptest_is_bar(kind)) {
		ret = ptest_bar_attach_rules(fd);
		if (ret)
			return ret;
		bar = ptest.bar_va;
		if (kind == KIND_BAR_WC)
			bar = ioremap_wc(pci_resource_start(ptest.bar_pdev,
							    PTEST_IVSHMEM_BAR) +
					 PAGE_SIZE, PAGE_SIZE);
		if (!bar)
			return -ENOMEM;
	}
	ret = ptest_imp_open(imp, fd, kind, dirs[kind]);
	if (ret)
		goto out;

	/* Userspace wrote the magic through its mmap of the entry ... */
	dma_resv_lock(imp->dmabuf->resv, NULL);
	seen = bar ? ioread32(bar) : iosys_map_rd(&imp->map, 0, u32);
	ret = ptest_expect(seen == PTEST_MAGIC(kind), -EIO,
			   "kernel reads %#x, userspace wrote %#x",
			   seen, PTEST_MAGIC(kind));
	/* ... and sees ours at the second word. */
	if (bar)
		iowrite32(~PTEST_MAGIC(kind), bar + sizeof(u32));
	else
		iosys_map_wr(&imp->map, sizeof(u32), u32, ~PTEST_MAGIC(kind));
	dma_resv_unlock(imp->dmabuf->resv);
	if (ret)
		ptest_imp_release(imp);
out:
	if (kind == KIND_BAR_WC)
		iounmap(bar);
	return ret;
}

/* A peer read of a write-only entry is refused with -EACCES. */
static int ptest_map_refused(struct ptest_importer *imp,
			     enum dma_data_direction dir)
{
	struct sg_table *sgt = dma_buf_map_attachment(imp->attach, dir);

	if (!IS_ERR(sgt)) {
		dma_buf_unmap_attachment(imp->attach, sgt, dir);
		return ptest_expect(false, -EIO, "direction %d was mapped", dir);
	}
	return ptest_expect(PTR_ERR(sgt) == -EACCES, -EIO,
			    "direction %d: %ld, not -EACCES", dir, PTR_ERR(sgt));
}

/*
 * The direction policy of a write-only entry, then a vmap by a caller that
 * never attached (as vb2-vmalloc does): it succeeds on host memory and
 * reaches the pages, and a BAR export has no vmap at all.
 */
static int ptest_cmd_direction(int fd, int kind)
{
	struct ptest_importer imp;
	struct iosys_map map;
	int ret, ret2, ret3;

	ret = ptest_imp_attach(&imp, fd, kind);
	if (ret)
		return ptest_expect(false, ret, "attach: %d", ret);

	dma_resv_lock(imp.dmabuf->resv, NULL);
	ret = ptest_map_refused(&imp, DMA_TO_DEVICE);
	ret2 = ptest_map_refused(&imp, DMA_BIDIRECTIONAL);
	ret3 = ptest_imp_map(&imp, kind, DMA_FROM_DEVICE);
	dma_resv_unlock(imp.dmabuf->resv);
	ptest_imp_release(&imp);
	if (ret || ret2 || ret3)
		return ret ?: ret2 ?: ret3;

	imp.dmabuf = dma_buf_get(fd);
	if (IS_ERR(imp.dmabuf))
		return PTR_ERR(imp.dmabuf);
	ret = dma_buf_vmap_unlocked(imp.dmabuf, &map);
	if (ptest_is_bar(kind)) {
		ret = ptest_expect(ret == -EINVAL, -EIO,
				   "BAR vmap without importer: %d", ret);
	} else if (!ptest_expect(!ret, ret, "vmap without importer: %d", ret)) {
		u32 seen = iosys_map_rd(&map, 0, u32);

		ret = ptest_expect(seen == PTEST_MAGIC(kind), -EIO,
				   "vmap reads %#x", seen);
		dma_buf_vunmap_unlocked(imp.dmabuf, &map);
	}
	dma_buf_put(imp.dmabuf);
	return ret;
}

/* As a hardware driver's dma-buf MR: stop DMA, then unmap. */
static void ptest_umem_invalidate(struct dma_buf_attachment *attach)
{
	ib_umem_dmabuf_unmap_pages(attach->importer_priv);
}

static const struct dma_buf_attach_ops ptest_umem_ops = {
	.allow_peer2peer = true,
	.invalidate_mappings = ptest_umem_invalidate,
};

/*
 * One dma-buf umem of the fake ib_device, as a hardware driver registers a
 * dma-buf MR (ib_umem_dmabuf_get(), then ib_umem_dmabuf_map_pages() under
 * the lock): it must map in @want, or be refused with @want_err.
 */
static int ptest_umem_one(int fd, int access, enum dma_data_direction want,
			  int want_err)
{
	struct ib_umem_dmabuf *umem_dmabuf;
	struct dma_buf *dmabuf;
	struct scatterlist *sg;
	size_t size, len = 0;
	int i, ret;

	dmabuf = dma_buf_get(fd);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	size = dmabuf->size;
	dma_buf_put(dmabuf);

	umem_dmabuf = ib_umem_dmabuf_get(ptest.ibdev, 0, size, fd, access,
					 &ptest_umem_ops);
	if (IS_ERR(umem_dmabuf))
		return ptest_expect(false, PTR_ERR(umem_dmabuf),
				    "access %#x: umem: %ld", access,
				    PTR_ERR(umem_dmabuf));
	dma_resv_lock(umem_dmabuf->attach->dmabuf->resv, NULL);
	ret = ib_umem_dmabuf_map_pages(umem_dmabuf);
	if (want_err)
		ret = ptest_expect(ret == want_err, -EIO,
				   "access %#x: map %d, not %d", access, ret,
				   want_err);
	else if (!ptest_expect(!ret, ret, "access %#x: map %d", access, ret)) {
		for_each_sgtable_dma_sg(umem_dmabuf->sgt, sg, i)
			len += sg_dma_len(sg);
		ret = ptest_expect(umem_dmabuf->dir == want && len == size,
				   -EIO,
				   "access %#x: direction %d (not %d), %zu of %zu bytes",
				   access, umem_dmabuf->dir, want, len, size);
	}
	dma_resv_unlock(umem_dmabuf->attach->dmabuf->resv);
	ib_umem_release(&umem_dmabuf->umem);
	return ret;
}

/*
 * The direction of a hardware importer's dma-buf MR follows its access
 * (core patch "RDMA/umem: Map dma-bufs in the direction the MR's access
 * needs"). A write-only entry takes a remote-write MR, write-only, and
 * refuses every MR that may be read from outside or not written.
 */
static int ptest_cmd_umem(int fd, int kind)
{
	const int wo = IB_ACCESS_LOCAL_WRITE | IB_ACCESS_REMOTE_WRITE;
	const int rw = wo | IB_ACCESS_REMOTE_READ;
	const int atomic = wo | IB_ACCESS_REMOTE_ATOMIC;
	int err = kind == KIND_VMALLOC || kind == KIND_BAR_WC ? -EACCES : 0;

	return ptest_umem_one(fd, wo, err ? DMA_FROM_DEVICE : DMA_BIDIRECTIONAL,
			      0) ?:
	       ptest_umem_one(fd, rw, DMA_BIDIRECTIONAL, err) ?:
	       ptest_umem_one(fd, atomic, DMA_BIDIRECTIONAL, err) ?:
	       ptest_umem_one(fd, IB_ACCESS_REMOTE_READ, DMA_TO_DEVICE, err) ?:
	       ptest_umem_one(fd, 0, DMA_TO_DEVICE, err);
}

/* A peer's ring: one aligned 32-bit store through the importer's vmap. */
static int ptest_cmd_write(int kind, int off, u32 val)
{
	struct ptest_importer *imp = &ptest.imp[kind];
	int ret = 0;

	if (!imp->dmabuf)
		return -ENOENT;
	if (off < 0 || off % sizeof(u32) ||
	    (size_t)off > imp->dmabuf->size - sizeof(u32))
		return -EINVAL;
	dma_resv_lock(imp->dmabuf->resv, NULL);
	if (iosys_map_is_null(&imp->map))
		ret = ptest_expect(false, -ENODEV, "write: not mapped");
	else
		iosys_map_wr(&imp->map, off, __le32, cpu_to_le32(val));
	dma_resv_unlock(imp->dmabuf->resv);
	return ret;
}

static int ptest_cmd_remap(int kind)
{
	struct ptest_importer *imp = &ptest.imp[kind];
	int ret;

	if (!imp->dmabuf)
		return -ENOENT;
	dma_resv_lock(imp->dmabuf->resv, NULL);
	imp->invalidated = false;
	dma_buf_invalidate_mappings(imp->dmabuf);
	ret = ptest_expect(imp->invalidated && !imp->sgt &&
			   iosys_map_is_null(&imp->map), -EIO,
			   "invalidation did not reach the importer");
	/* A mapping that succeeded once succeeds again. */
	if (!ret)
		ret = ptest_imp_map(imp, kind, imp->dir);
	dma_resv_unlock(imp->dmabuf->resv);
	return ret;
}

static int ptest_cmd_remove(int kind)
{
	struct ptest_ucontext *uctx = ptest.last_uctx;
	struct ptest_entry *e;

	if (!uctx || !uctx->entries[kind])
		return -ENOENT;
	e = uctx->entries[kind];
	uctx->entries[kind] = NULL;
	rdma_user_mmap_entry_remove(&e->rdma);
	return 0;
}

/*
 * After revocation: the importer was told and has stopped, a new DMA
 * mapping fails with -ENODEV, and a new vmap of host memory succeeds but
 * maps zeroed pages of its own (nobody else holds a vmap by now).
 */
static int ptest_cmd_revoked(int kind)
{
	struct ptest_importer *imp = &ptest.imp[kind];
	bool bar = ptest_is_bar(kind);
	struct iosys_map map;
	struct sg_table *sgt;
	int ret, vret;
	u32 seen = 0;

	if (!imp->dmabuf)
		return -ENOENT;
	ret = ptest_expect(imp->invalidated && !imp->sgt &&
			   iosys_map_is_null(&imp->map), -EIO,
			   "importer not invalidated (%d) or still mapped",
			   imp->invalidated);

	dma_resv_lock(imp->dmabuf->resv, NULL);
	sgt = dma_buf_map_attachment(imp->attach, imp->dir);
	vret = dma_buf_vmap(imp->dmabuf, &map);
	if (!vret) {
		seen = iosys_map_rd(&map, 0, u32);
		iosys_map_wr(&map, 0, u32, 0xdeadbeef);
		dma_buf_vunmap(imp->dmabuf, &map);
	}
	dma_resv_unlock(imp->dmabuf->resv);
	if (!IS_ERR(sgt)) {
		dma_buf_unmap_attachment_unlocked(imp->attach, sgt, imp->dir);
		ret = ptest_expect(false, -EIO, "map after revoke succeeded");
	} else if (PTR_ERR(sgt) != -ENODEV) {
		ret = ptest_expect(false, -EIO, "map after revoke: %ld",
				   PTR_ERR(sgt));
	}
	if (bar && vret != -EINVAL)
		ret = ptest_expect(false, -EIO, "BAR vmap after revoke: %d", vret);
	if (!bar && (vret || seen))
		ret = ptest_expect(false, -EIO,
				   "vmap after revoke: %d, reads %#x", vret, seen);
	ptest_imp_release(imp);
	return ret;
}

static int ptest_cmd_freed(int kind)
{
	int freed = ptest.free_seq[kind], stopped = ptest.imp[kind].stop_seq;

	return ptest_expect(freed && freed > stopped, -EIO,
			    "mmap_free at %d, importer stopped at %d",
			    freed, stopped);
}

/* vmap with no attachment, as vb2-vmalloc does; never told, never asked. */
static int ptest_cmd_hold(int fd, int kind)
{
	struct ptest_holder *h = &ptest.holder[kind];
	unsigned int i;
	int ret;

	if (h->dmabuf)
		return -EBUSY;
	h->dmabuf = dma_buf_get(fd);
	if (IS_ERR(h->dmabuf)) {
		ret = PTR_ERR(h->dmabuf);
		h->dmabuf = NULL;
		return ret;
	}
	ret = dma_buf_vmap_unlocked(h->dmabuf, &h->map);
	if (ret || !is_vmalloc_addr(h->map.vaddr) ||
	    h->dmabuf->size > sizeof(h->pages) / sizeof(h->pages[0]) * PAGE_SIZE) {
		if (!ret)
			dma_buf_vunmap_unlocked(h->dmabuf, &h->map);
		dma_buf_put(h->dmabuf);
		h->dmabuf = NULL;
		return ptest_expect(false, ret ?: -EIO, "holder vmap: %d", ret);
	}
	h->npages = h->dmabuf->size >> PAGE_SHIFT;
	for (i = 0; i < h->npages; i++)
		h->pages[i] = vmalloc_to_page(h->map.vaddr + i * PAGE_SIZE);
	iosys_map_wr(&h->map, 3 * sizeof(u32), u32, 0x11111111);
	h->start_seq = atomic_inc_return(&ptest.seq);
	return 0;
}

/*
 * The holder after a revocation it ignored: its pages are still allocated
 * (held by the vmap alone if the driver freed its side), it writes once
 * more, and its vunmap frees them. A page freed and reused under it would
 * take that write: page_poison and the refcounts below catch it.
 */
static int ptest_cmd_late(int kind)
{
	struct ptest_holder *h = &ptest.holder[kind];
	bool freed = ptest.free_seq[kind] > h->start_seq;
	int before[2] = {}, after[2] = {};
	unsigned int i;
	int ret = 0;

	if (!h->dmabuf)
		return -ENOENT;
	for (i = 0; i < h->npages; i++)
		before[i] = page_count(h->pages[i]);
	iosys_map_wr(&h->map, 3 * sizeof(u32), u32, 0xdeaddead);
	dma_buf_vunmap_unlocked(h->dmabuf, &h->map);
	for (i = 0; i < h->npages; i++)
		after[i] = page_count(h->pages[i]);
	dma_buf_put(h->dmabuf);
	h->dmabuf = NULL;

	pr_info("# late vmap holder: driver %s, page refs %d/%d before vunmap, %d/%d after\n",
		freed ? "freed its pages" : "still owns its pages",
		before[0], before[1], after[0], after[1]);
	for (i = 0; i < h->npages; i++)
		ret = ret ?: ptest_expect(before[i] == (freed ? 1 : 2) &&
					  after[i] == (freed ? 0 : 1), -EIO,
					  "page %u: refs %d before, %d after",
					  i, before[i], after[i]);
	return ret;
}

static ssize_t ptest_ctl_write(struct file *file, const char __user *ubuf,
			       size_t len, loff_t *ppos)
{
	char buf[64], name[24] = "", arg[24] = "";
	int a = -1, b = -1, ret;
	u32 val;

	if (len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = 0;
	if (sscanf(buf, "%23s %d %d", name, &a, &b) < 1)
		return -EINVAL;

	mutex_lock(&ptest.lock);
	if (!strcmp(name, "import") && b >= 0 && b < KIND_PLAIN) {
		ret = ptest_cmd_import(a, b);
		snprintf(arg, sizeof(arg), "%d", b);
	} else if (!strcmp(name, "attach")) {
		ret = ptest_imp_open(&ptest.imp[IMP_FOREIGN], a, IMP_FOREIGN,
				     DMA_FROM_DEVICE);
	} else if (!strcmp(name, "write") && a == IMP_FOREIGN &&
		   sscanf(buf, "%*s %*d %*d %x", &val) == 1) {
		ret = ptest_cmd_write(a, b, val);
	} else if (!strcmp(name, "detach")) {
		ptest_imp_release(&ptest.imp[IMP_FOREIGN]);
		ret = 0;
	} else if (!strcmp(name, "direction") && b >= 0 && b < KIND_PLAIN) {
		ret = ptest_cmd_direction(a, b);
		snprintf(arg, sizeof(arg), "%d", b);
	} else if (!strcmp(name, "umem") && b >= 0 && b <= KIND_VMALLOC) {
		ret = ptest_cmd_umem(a, b);
		snprintf(arg, sizeof(arg), "%d", b);
	} else if (!strcmp(name, "hold") && b >= 0 && b <= KIND_VMALLOC) {
		ret = ptest_cmd_hold(a, b);
		snprintf(arg, sizeof(arg), "%d", b);
	} else if (!strcmp(name, "late") && a >= 0 && a <= KIND_VMALLOC) {
		ret = ptest_cmd_late(a);
		snprintf(arg, sizeof(arg), "%d", a);
	} else if (!strcmp(name, "remap") && a >= 0 && a < KIND_PLAIN) {
		ret = ptest_cmd_remap(a);
	} else if (!strcmp(name, "remove") && a >= 0 && a < KIND_PLAIN) {
		ret = ptest_cmd_remove(a);
	} else if (!strcmp(name, "disassociate")) {
		rdma_user_mmap_disassociate(ptest.ibdev);
		ret = 0;
	} else if (!strcmp(name, "unregister")) {
		ptest_dev_del();
		ret = ptest_dev_add();
	} else if (!strcmp(name, "revoked") && a >= 0 && a <= IMP_FOREIGN &&
		   sscanf(buf, "%*s %*d %23s", arg) == 1) {
		ret = ptest_cmd_revoked(a);
	} else if (!strcmp(name, "freed") && a >= 0 && a < KIND_PLAIN) {
		ret = ptest_cmd_freed(a);
	} else {
		mutex_unlock(&ptest.lock);
		return -EINVAL;
	}
	ptest_result(ret, name, arg[0] ? arg : NULL);
	mutex_unlock(&ptest.lock);
	return ret ?: len;
}

/* -------- the BAR: two ivshmem-plain functions under one switch -------- */

/*
 * The first function's shared-memory BAR backs the BAR entries and is
 * registered with P2PDMA; the second one is the peer that imports them.
 */
static int ptest_pci_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	int ret;

	if (ptest.bar_pdev && ptest.peer_pdev)
		return -EBUSY;
	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	if (ptest.bar_pdev) {
		ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
		if (ret)
			return ret;
		ptest.peer_pdev = pdev;
		return 0;
	}
	ret = pcim_p2pdma_init(pdev);
	if (ret)
		return ret;
	/* Page 0 only (UC): a UC- memtype over page 1 would make its WC
	 * user mapping fall back to UC- (x86 PAT keeps one type per range).
	 */
	ptest.bar_va = pcim_iomap(pdev, PTEST_IVSHMEM_BAR, PAGE_SIZE);
	if (!ptest.bar_va)
		return -ENOMEM;
	ptest.bar_pdev = pdev;
	return 0;
}

static void ptest_pci_remove(struct pci_dev *pdev)
{
	if (pdev == ptest.bar_pdev)
		ptest.bar_pdev = NULL;
	if (pdev == ptest.peer_pdev)
		ptest.peer_pdev = NULL;
}

static const struct pci_device_id ptest_pci_ids[] = {
	{ PCI_DEVICE(PCI_VENDOR_ID_REDHAT_QUMRANET, 0x1110) }, /* ivshmem */
	{}
};

static struct pci_driver ptest_pci_driver = {
	.name = "p2p_mmap_test",
	.id_table = ptest_pci_ids,
	.probe = ptest_pci_probe,
	.remove = ptest_pci_remove,
};

/*
 * "HOST VMALLOC BAR BAR_WC PLAIN [BAR_PHYS]": mmap offsets of the newest
 * context's entries (~0 for none), then the BAR's physical address.
 */
static ssize_t ptest_offsets_read(struct file *file, char __user *ubuf,
				  size_t len, loff_t *ppos)
{
	struct ptest_ucontext *uctx;
	char buf[160] = "";
	int kind, n = 0;

	mutex_lock(&ptest.lock);
	uctx = ptest.last_uctx;
	for (kind = 0; uctx && kind < NR_KINDS; kind++)
		n += scnprintf(buf + n, sizeof(buf) - n, "%llu ",
			       uctx->entries[kind] ?
			       rdma_user_mmap_get_offset(&uctx->entries[kind]->rdma) :
			       ~0ULL);
	if (n && ptest.bar_pdev)
		n += scnprintf(buf + n, sizeof(buf) - n, "%llu ",
			       (u64)pci_resource_start(ptest.bar_pdev,
						       PTEST_IVSHMEM_BAR));
	mutex_unlock(&ptest.lock);
	if (!n)
		return -ENOENT;
	buf[n - 1] = '\n';
	return simple_read_from_buffer(ubuf, len, ppos, buf, n);
}

static const struct file_operations ptest_ctl_fops = {
	.owner = THIS_MODULE,
	.write = ptest_ctl_write,
};

static const struct file_operations ptest_offsets_fops = {
	.owner = THIS_MODULE,
	.read = ptest_offsets_read,
};

static int __init ptest_init(void)
{
	int ret;

	mutex_init(&ptest.lock);
	pr_info("TAP version 13\n");
	ptest.fdev = faux_device_create("p2p_mmap_test", NULL, NULL);
	if (!ptest.fdev)
		return -ENODEV;
	ptest.fdev->dev.dma_parms = &ptest.dma_parms;
	ret = dma_coerce_mask_and_coherent(&ptest.fdev->dev, DMA_BIT_MASK(64));
	if (ret)
		goto err_fdev;
	/* Binds the ivshmem functions, if the guest has them, right now. */
	ret = pci_register_driver(&ptest_pci_driver);
	if (ret)
		goto err_fdev;
	pr_info("# BAR exporter %s, peer importer %s\n",
		ptest.bar_pdev ? pci_name(ptest.bar_pdev) : "none",
		ptest.peer_pdev ? pci_name(ptest.peer_pdev) : "none");
	ret = ptest_dev_add();
	if (ret)
		goto err_pci;
	ptest.dir = debugfs_create_dir("p2p_mmap_test", NULL);
	debugfs_create_file("ctl", 0200, ptest.dir, NULL, &ptest_ctl_fops);
	debugfs_create_file("offsets", 0400, ptest.dir, NULL,
			    &ptest_offsets_fops);
	return 0;

err_pci:
	pci_unregister_driver(&ptest_pci_driver);
err_fdev:
	faux_device_destroy(ptest.fdev);
	return ret;
}

static void __exit ptest_exit(void)
{
	static const int kinds[] = { KIND_HOST, KIND_BAR };
	bool held[ARRAY_SIZE(kinds)];
	int i;

	for (i = 0; i < ARRAY_SIZE(kinds); i++)
		held[i] = ptest.imp[kinds[i]].dmabuf;
	debugfs_remove_recursive(ptest.dir);
	/*
	 * Module unload: the device goes while a process holds imports and
	 * a vmap holder ignores it. The unregister must not wait for the
	 * holder; the imports must be revoked.
	 */
	ptest_dev_del();
	if (ptest.holder[KIND_HOST].dmabuf)
		ptest_result(ptest_cmd_late(KIND_HOST), "late", "module-unload");
	for (i = 0; i < ARRAY_SIZE(kinds); i++) {
		if (!held[i])
			continue;
		ptest_result(ptest_cmd_revoked(kinds[i]), "revoked",
			     "module-unload");
		ptest_result(ptest_cmd_freed(kinds[i]), "freed",
			     "module-unload");
	}
	for (i = 0; i < NR_KINDS; i++)
		ptest_imp_release(&ptest.imp[i]);
	pci_unregister_driver(&ptest_pci_driver);
	faux_device_destroy(ptest.fdev);
	pr_info("1..%d\n", ptest.tests);
	pr_info("# p2p_mmap_test: %d of %d failed\n", ptest.failed,
		ptest.tests);
}

module_init(ptest_init);
module_exit(ptest_exit);
MODULE_DESCRIPTION("KTAP test of the RDMA p2p mmap-entry layer");
MODULE_LICENSE("Dual BSD/GPL");
