// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * dma-buf MRs: rxe as a revocable dma-buf importer.
 *
 * rxe has no DMA device (ib_uses_virt_dma()): it moves data with the CPU, so
 * it reaches a dma-buf through a CPU mapping of it, never through the DMA
 * addresses of an attachment. The buffer is imported with the core's dynamic
 * dma-buf umem (ib_umem_dmabuf_get(): the fd, the bounds, the attachment and
 * its release), and mapped with
 *  - ib_uverbs_dmabuf_cpu_map() for exports of the uverbs exporter (doorbell
 *    pages, BAR pages): a mapping of this attachment, refused in directions
 *    the export does not grant and once it is revoked; I/O memory for BARs;
 *  - dma_buf_vmap() for every other exporter (udmabuf, dma-heaps, GPUs),
 *    which may also hand out I/O memory.
 * Accesses go through struct iosys_map, so both kinds of memory work.
 *
 * Access matching. The mapping is asked for in the direction the core
 * derived from the MR's access (umem_dmabuf->dir, as for hardware
 * importers): read and write when it may be written, DMA_TO_DEVICE when it
 * may not. An export that grants its peers writes only (a doorbell) refuses
 * that; an MR that asks for no remote read or atomic is then mapped
 * write-only (ib_umem_dmabuf_narrow_dir(): DMA_FROM_DEVICE) and every read
 * through it fails: a local read (the MR as a send or RDMA write source)
 * completes with IB_WC_LOC_PROT_ERR. Remote reads and atomics need
 * IB_ACCESS_REMOTE_READ/_ATOMIC, which such an MR cannot be registered with
 * (-EACCES).
 *
 * Lifetime and locking:
 *  - The MR owns the umem (a dma-buf reference and the attachment) from
 *    registration to rxe_mr_cleanup(). struct rxe_mr_dmabuf, the importer's
 *    state, hangs off umem_dmabuf->private; its mapping is read and changed
 *    only under the buffer's dma_resv lock. The mapping's direction
 *    (umem_dmabuf->dir) is settled at registration, before the MR is
 *    visible, and never changes.
 *  - Every access holds the dma_resv lock while it touches the mapping.
 *    Exporters call invalidate_mappings with that lock held, so the callback
 *    never overlaps an access; it drops the mapping, and when it returns
 *    nothing touches the memory until a new mapping is made.
 *  - The next access maps again. The uverbs exporter refuses once the export
 *    is revoked (-ENODEV): from then on every access fails, a responder with
 *    a remote access error (NAK), a requester with a local protection error.
 *    An exporter that only moved the buffer maps it again (the 2019
 *    predictability rule), and the access goes on.
 *  - Accesses sleep (the dma_resv lock, a new mapping). rxe's data path runs
 *    in tasks: work items, the doorbell engine's thread or the caller of a
 *    kick, never in atomic context, as ODP MRs also require.
 */

#include <linux/dma-buf.h>
#include <linux/dma-resv.h>
#include <linux/iosys-map.h>
#include <linux/unaligned.h>
#include <rdma/ib_umem.h>

#include "rxe.h"
#include "rxe_loc.h"

MODULE_IMPORT_NS("DMA_BUF");

/**
 * struct rxe_mr_dmabuf - importer state of a dma-buf MR (umem_dmabuf->private)
 * @map: CPU mapping of the whole buffer, or cleared; under the dma_resv lock
 * @uverbs: @map is ib_uverbs_dmabuf_cpu_map()'s, not dma_buf_vmap()'s
 */
struct rxe_mr_dmabuf {
	struct iosys_map map;
	bool uverbs;
};

static struct ib_umem_dmabuf *rxe_umem_dmabuf(struct rxe_mr *mr)
{
	return to_ib_umem_dmabuf(mr->umem);
}

static struct dma_resv *rxe_mr_dmabuf_resv(struct rxe_mr *mr)
{
	return rxe_umem_dmabuf(mr)->attach->dmabuf->resv;
}

/* Under the dma_resv lock. */
static void rxe_mr_dmabuf_unmap(struct ib_umem_dmabuf *umem_dmabuf)
{
	struct dma_buf_attachment *attach = umem_dmabuf->attach;
	struct rxe_mr_dmabuf *md = umem_dmabuf->private;

	dma_resv_assert_held(attach->dmabuf->resv);

	if (!md || iosys_map_is_null(&md->map))
		return;
	if (md->uverbs)
		ib_uverbs_dmabuf_cpu_unmap(attach, &md->map);
	else
		dma_buf_vunmap(attach->dmabuf, &md->map);
	iosys_map_clear(&md->map);
}

/*
 * Under the dma_resv lock, with no mapping: map the buffer in the direction
 * of the umem.
 */
static int rxe_mr_dmabuf_map(struct ib_umem_dmabuf *umem_dmabuf)
{
	struct dma_buf_attachment *attach = umem_dmabuf->attach;
	struct rxe_mr_dmabuf *md = umem_dmabuf->private;
	long ret;
	int err;

	err = ib_uverbs_dmabuf_cpu_map(attach, umem_dmabuf->dir, &md->map);
	md->uverbs = !err;
	if (err == -EOPNOTSUPP)
		err = dma_buf_vmap(attach->dmabuf, &md->map);
	if (err)
		return err;

	/*
	 * As ib_umem_dmabuf_map_pages(): the contents may still be on their
	 * way after a move; wait for the exporter's fences.
	 */
	ret = dma_resv_wait_timeout(attach->dmabuf->resv, DMA_RESV_USAGE_KERNEL,
				    false, MAX_SCHEDULE_TIMEOUT);
	if (ret <= 0) {
		rxe_mr_dmabuf_unmap(umem_dmabuf);
		return ret ? ret : -ETIMEDOUT;
	}
	return 0;
}

/*
 * Called by the exporter with the dma_resv lock held, which no access holds
 * now: drop the mapping; the next access makes a new one, if it may.
 */
static void rxe_mr_dmabuf_invalidate(struct dma_buf_attachment *attach)
{
	rxe_mr_dmabuf_unmap(attach->importer_priv);
}

static const struct dma_buf_attach_ops rxe_mr_dmabuf_attach_ops = {
	/* BAR (MMIO) exports: the CPU mapping handles I/O memory. */
	.allow_peer2peer = true,
	.invalidate_mappings = rxe_mr_dmabuf_invalidate,
};

/*
 * Whether the MR's mapping grants @dir (a direction of rxe's accesses); the
 * direction is settled at registration, so no lock is needed.
 */
static bool rxe_mr_dmabuf_grants(struct rxe_mr *mr, enum dma_data_direction dir)
{
	enum dma_data_direction mapped = rxe_umem_dmabuf(mr)->dir;

	return mapped == DMA_BIDIRECTIONAL || mapped == dir;
}

/*
 * Lock the buffer against invalidation and return its mapping, mapped again
 * if an invalidation dropped it. On success the caller unlocks with
 * dma_resv_unlock(rxe_mr_dmabuf_resv(mr)) once it no longer touches it.
 */
static struct iosys_map *rxe_mr_dmabuf_lock(struct rxe_mr *mr)
{
	struct ib_umem_dmabuf *umem_dmabuf = rxe_umem_dmabuf(mr);
	struct rxe_mr_dmabuf *md = umem_dmabuf->private;
	int err;

	dma_resv_lock(umem_dmabuf->attach->dmabuf->resv, NULL);
	if (iosys_map_is_null(&md->map)) {
		err = rxe_mr_dmabuf_map(umem_dmabuf);
		if (err) {
			dma_resv_unlock(umem_dmabuf->attach->dmabuf->resv);
			rxe_dbg_mr(mr, "dma-buf cannot be mapped again, err = %d\n",
				   err);
			return NULL;
		}
	}
	return &md->map;
}

/* Byte offset in the buffer of @iova, which mr_check_range() accepted. */
static size_t rxe_mr_dmabuf_offset(struct rxe_mr *mr, u64 iova)
{
	return mr->umem->address + (iova - mr->ibmr.iova);
}

/*
 * A naturally aligned 4- or 8-byte write lands in one store, so that a
 * reader of the memory (the doorbell engine reading a producer index) never
 * sees it torn. Longer writes are copies without such a guarantee.
 */
static void rxe_mr_dmabuf_write(struct iosys_map *map, size_t off,
				const void *src, unsigned int length)
{
	if (length == sizeof(u32) && IS_ALIGNED(off, sizeof(u32)))
		iosys_map_wr(map, off, u32, get_unaligned((const u32 *)src));
	else if (length == sizeof(u64) && IS_ALIGNED(off, sizeof(u64)))
		iosys_map_wr(map, off, u64, get_unaligned((const u64 *)src));
	else
		iosys_map_memcpy_to(map, off, src, length);
}

/**
 * rxe_mr_dmabuf_copy - Copy to or from a dma-buf MR
 * @mr: the MR, a dma-buf MR
 * @iova: where in the MR; mr_check_range() has accepted @iova and @length
 * @addr: the other side of the copy
 * @length: bytes to copy
 * @dir: RXE_TO_MR_OBJ (write the MR) or RXE_FROM_MR_OBJ (read it)
 *
 * Context: process context (it sleeps).
 * Return: 0, or -EFAULT if the mapping does not grant @dir or the buffer
 * cannot be mapped (revoked).
 */
int rxe_mr_dmabuf_copy(struct rxe_mr *mr, u64 iova, void *addr,
		       unsigned int length, enum rxe_mr_copy_dir dir)
{
	size_t off = rxe_mr_dmabuf_offset(mr, iova);
	struct iosys_map *map;

	if (!rxe_mr_dmabuf_grants(mr, dir == RXE_TO_MR_OBJ ? DMA_FROM_DEVICE :
							       DMA_TO_DEVICE)) {
		rxe_dbg_mr(mr, "the dma-buf export does not grant %s\n",
			   dir == RXE_TO_MR_OBJ ? "writes" : "reads");
		return -EFAULT;
	}

	map = rxe_mr_dmabuf_lock(mr);
	if (!map)
		return -EFAULT;
	if (dir == RXE_TO_MR_OBJ)
		rxe_mr_dmabuf_write(map, off, addr, length);
	else
		iosys_map_memcpy_from(addr, map, off, length);
	dma_resv_unlock(rxe_mr_dmabuf_resv(mr));
	return 0;
}

/* The 8-byte target of an atomic: in range, aligned, read and write granted. */
static enum resp_states rxe_mr_dmabuf_atomic_target(struct rxe_mr *mr,
						    u64 iova, size_t *off)
{
	if (mr_check_range(mr, iova, sizeof(u64))) {
		rxe_dbg_mr(mr, "iova out of range\n");
		return RESPST_ERR_RKEY_VIOLATION;
	}
	*off = rxe_mr_dmabuf_offset(mr, iova);
	if (!IS_ALIGNED(*off, sizeof(u64))) {
		rxe_dbg_mr(mr, "iova not aligned\n");
		return RESPST_ERR_MISALIGNED_ATOMIC;
	}
	return RESPST_NONE;
}

/**
 * rxe_mr_dmabuf_atomic_op - Compare-and-swap or fetch-and-add on a dma-buf MR
 * @mr: the MR, a valid dma-buf MR
 * @iova: address of the 8-byte operand
 * @opcode: IB_OPCODE_RC_COMPARE_SWAP or IB_OPCODE_RC_FETCH_ADD
 * @compare: the compare operand
 * @swap_add: the swap or add operand
 * @orig_val: returns the value before the operation
 *
 * Atomic with respect to rxe's other atomics (atomic_ops_lock), as for
 * other MRs.
 *
 * Context: process context (it sleeps).
 * Return: RESPST_NONE, or the responder state of the failure.
 */
enum resp_states rxe_mr_dmabuf_atomic_op(struct rxe_mr *mr, u64 iova,
					 int opcode, u64 compare, u64 swap_add,
					 u64 *orig_val)
{
	struct iosys_map *map;
	enum resp_states st;
	size_t off;
	u64 value;

	st = rxe_mr_dmabuf_atomic_target(mr, iova, &off);
	if (st != RESPST_NONE)
		return st;
	if (!rxe_mr_dmabuf_grants(mr, DMA_BIDIRECTIONAL))
		return RESPST_ERR_RKEY_VIOLATION;

	map = rxe_mr_dmabuf_lock(mr);
	if (!map)
		return RESPST_ERR_RKEY_VIOLATION;

	spin_lock_bh(&atomic_ops_lock);
	value = iosys_map_rd(map, off, u64);
	*orig_val = value;
	if (opcode == IB_OPCODE_RC_COMPARE_SWAP) {
		if (value == compare)
			iosys_map_wr(map, off, u64, swap_add);
	} else {
		iosys_map_wr(map, off, u64, value + swap_add);
	}
	spin_unlock_bh(&atomic_ops_lock);

	dma_resv_unlock(rxe_mr_dmabuf_resv(mr));
	return RESPST_NONE;
}

/**
 * rxe_mr_dmabuf_atomic_write - 8-byte atomic write to a dma-buf MR
 * @mr: the MR, a valid dma-buf MR
 * @iova: address of the 8 bytes
 * @value: the value
 *
 * Context: process context (it sleeps).
 * Return: RESPST_NONE, or the responder state of the failure.
 */
enum resp_states rxe_mr_dmabuf_atomic_write(struct rxe_mr *mr, u64 iova,
					    u64 value)
{
	struct iosys_map *map;
	enum resp_states st;
	size_t off;

	st = rxe_mr_dmabuf_atomic_target(mr, iova, &off);
	if (st != RESPST_NONE)
		return st;
	if (!rxe_mr_dmabuf_grants(mr, DMA_FROM_DEVICE))
		return RESPST_ERR_RKEY_VIOLATION;

	map = rxe_mr_dmabuf_lock(mr);
	if (!map)
		return RESPST_ERR_RKEY_VIOLATION;

	/*
	 * The value lands after every earlier write of this QP, as in
	 * rxe_mr_do_atomic_write(): a reader that sees it sees those writes.
	 */
	if (map->is_iomem) {
		/* I/O memory: order the earlier stores before this one */
		wmb();
		iosys_map_wr(map, off, u64, value);
	} else {
		/* pairs with the reader's acquire load of the value */
		smp_store_release((u64 *)(map->vaddr + off), value);
	}

	dma_resv_unlock(rxe_mr_dmabuf_resv(mr));
	return RESPST_NONE;
}

/*
 * Map the buffer for the first time, in the direction the core derived from
 * the MR's access. An export that grants peers writes only (a doorbell)
 * refuses read and write; it still backs an MR that asks for no remote read
 * or atomic, as a write-only MR, the same fallback as for hardware importers
 * (ib_umem_dmabuf_map_pages()).
 */
static int rxe_mr_dmabuf_map_first(struct rxe_mr *mr)
{
	struct ib_umem_dmabuf *umem_dmabuf = rxe_umem_dmabuf(mr);
	int err;

	err = rxe_mr_dmabuf_map(umem_dmabuf);
	if (err == -EACCES && ib_umem_dmabuf_narrow_dir(umem_dmabuf))
		err = rxe_mr_dmabuf_map(umem_dmabuf);
	return err;
}

/**
 * rxe_mr_dmabuf_init - Initialize an MR over a dma-buf
 * @rxe: the device
 * @offset: byte offset of the MR in the buffer
 * @length: length of the MR
 * @iova: the MR's address
 * @fd: the dma-buf's file descriptor
 * @access: IB_ACCESS_* of the MR
 * @mr: the MR, in rxe's MR pool
 *
 * Return: 0; -EACCES if the export does not grant what @access needs;
 * -ENODEV if it was revoked; -EOPNOTSUPP if the exporter offers no CPU
 * mapping; -EINVAL for a range beyond the buffer; the errors of
 * dma_buf_get() and of memory allocation.
 */
int rxe_mr_dmabuf_init(struct rxe_dev *rxe, u64 offset, u64 length, u64 iova,
		       int fd, int access, struct rxe_mr *mr)
{
	struct ib_umem_dmabuf *umem_dmabuf;
	struct rxe_mr_dmabuf *md;
	struct dma_resv *resv;
	int err;

	rxe_mr_init(access, mr);

	md = kzalloc_obj(*md);
	if (!md)
		return -ENOMEM;

	umem_dmabuf = ib_umem_dmabuf_get(&rxe->ib_dev, offset, length, fd,
					 access, &rxe_mr_dmabuf_attach_ops);
	if (IS_ERR(umem_dmabuf)) {
		err = PTR_ERR(umem_dmabuf);
		rxe_dbg_mr(mr, "cannot import dma-buf fd %d, err = %d\n", fd,
			   err);
		goto err_free;
	}
	mr->umem = &umem_dmabuf->umem;
	mr->ibmr.iova = iova;
	mr->ibmr.length = length;

	resv = umem_dmabuf->attach->dmabuf->resv;
	dma_resv_lock(resv, NULL);
	umem_dmabuf->private = md;
	err = rxe_mr_dmabuf_map_first(mr);
	if (err)
		umem_dmabuf->private = NULL;
	dma_resv_unlock(resv);
	if (err) {
		rxe_dbg_mr(mr, "dma-buf fd %d cannot be mapped for access %#x, err = %d\n",
			   fd, access, err);
		/* An exporter without any CPU mapping */
		if (err == -EINVAL)
			err = -EOPNOTSUPP;
		ib_umem_release(mr->umem);
		mr->umem = NULL;
		goto err_free;
	}

	mr->ibmr.type = IB_MR_TYPE_USER;
	mr->state = RXE_MR_STATE_VALID;
	return 0;

err_free:
	kfree(md);
	return err;
}

/**
 * rxe_mr_dmabuf_cleanup - Drop a dma-buf MR's mapping and importer state
 * @mr: the MR; its umem is released by the caller afterwards
 */
void rxe_mr_dmabuf_cleanup(struct rxe_mr *mr)
{
	struct ib_umem_dmabuf *umem_dmabuf = rxe_umem_dmabuf(mr);
	struct rxe_mr_dmabuf *md;
	struct dma_resv *resv = umem_dmabuf->attach->dmabuf->resv;

	dma_resv_lock(resv, NULL);
	rxe_mr_dmabuf_unmap(umem_dmabuf);
	md = umem_dmabuf->private;
	umem_dmabuf->private = NULL;
	dma_resv_unlock(resv);
	kfree(md);
}
