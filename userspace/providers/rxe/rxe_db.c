// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * Doorbell pages of the rxe provider: asking the kernel for a slot at QP
 * creation, mapping the pages, and the ring.
 *
 * The slot format and the ring protocol are the kernel's
 * (include/uapi/rdma/rdma_user_rxe.h, docs/rxe-doorbell.md): store the new
 * SQ producer index into the slot, full barrier, read the slot's flags,
 * and kick with the old empty POST_SEND only if RXE_DB_NEED_WAKEUP says
 * the kernel's doorbell engine does not poll the slot. This is the
 * producer side of io_uring's SQPOLL protocol; the engine's side is
 * rxe_db_disarm() in the kernel's rxe_db_engine.c.
 *
 * Lifetime: a page is mapped when the first QP with a slot in it is
 * created and unmapped when the last of them is destroyed, after the
 * kernel destroyed the QP; the kernel retires slots of destroyed QPs, so a
 * late store through a stale mapping never reaches another QP.
 *
 * Kernels without doorbell pages (stock rxe) refuse any create-QP request
 * with EINVAL; the create is then retried without it, and the context
 * rings every QP with the system call from then on.
 */

#include <config.h>

#include <endian.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rxe.h"
#include "rxe_queue.h"

#define RXE_DB_ENV	"RXE_DOORBELL"

typedef _Atomic(__u32) rxe_db_atomic_t;

static rxe_db_atomic_t *db_word(__le32 *p)
{
	return (rxe_db_atomic_t *)p;
}

void rxe_db_context_init(struct rxe_context *ctx)
{
	struct rxe_db_context *db = &ctx->db;
	const char *env = getenv(RXE_DB_ENV);

	pthread_mutex_init(&db->lock, NULL);
	list_head_init(&db->pages);
	db->kernel = RXE_DB_KERNEL_UNKNOWN;
	db->export = RXE_DB_KERNEL_UNKNOWN;
	if (!env || !strcmp(env, "page"))
		return;
	if (!strcmp(env, "syscall"))
		db->syscall = true;
	else
		verbs_err(&ctx->ibv_ctx,
			  "rxe: %s=%s is neither page nor syscall; using page\n",
			  RXE_DB_ENV, env);
}

/* QPs the application did not destroy: their pages go with the context. */
void rxe_db_context_cleanup(struct rxe_context *ctx)
{
	struct rxe_db_page *page, *next;
	long pgsz = sysconf(_SC_PAGESIZE);

	list_for_each_safe(&ctx->db.pages, page, next, entry) {
		list_del(&page->entry);
		munmap(page->addr, pgsz);
		free(page);
	}
	pthread_mutex_destroy(&ctx->db.lock);
}

/*
 * The request for a QP's create: RXE_CREATE_QP_* flags, or 0 for none.
 * want holds the flags a peer QP needs; a plain QP asks for a slot unless
 * the kernel has none or RXE_DOORBELL=syscall.
 */
static uint32_t rxe_db_request(struct rxe_context *ctx, uint32_t want)
{
	if (atomic_load_explicit(&ctx->db.kernel, memory_order_relaxed) ==
	    RXE_DB_KERNEL_NO)
		return 0;
	if (want)
		return want | RXE_CREATE_QP_DOORBELL;
	return ctx->db.syscall ? 0 : RXE_CREATE_QP_DOORBELL;
}

/*
 * After a create with a request: ret is its result. Returns whether to
 * retry without the request (the kernel predates doorbells).
 */
static bool rxe_db_retry(struct rxe_context *ctx, uint32_t flags, int ret)
{
	if (!flags)
		return false;
	if (!ret) {
		atomic_store_explicit(&ctx->db.kernel, RXE_DB_KERNEL_YES,
				      memory_order_relaxed);
		return false;
	}
	/*
	 * Stock rxe refuses any driver data in with EINVAL. A kernel with
	 * doorbells also says EINVAL for a bad qp_attr; the retry then fails
	 * the same way, and nothing is concluded from it.
	 */
	return ret == EINVAL &&
	       atomic_load_explicit(&ctx->db.kernel, memory_order_relaxed) !=
	       RXE_DB_KERNEL_YES;
}

/* The retry without a request worked: this kernel has no doorbell pages. */
static void rxe_db_no_kernel(struct rxe_context *ctx)
{
	if (atomic_exchange_explicit(&ctx->db.kernel, RXE_DB_KERNEL_NO,
				     memory_order_relaxed) != RXE_DB_KERNEL_NO)
		verbs_debug(&ctx->ibv_ctx,
			    "rxe: the kernel has no doorbell pages; QPs ring with a system call\n");
}

/* The kernel grants what it was asked for or fails: never less, silently. */
static int rxe_db_granted(struct rxe_qp *qp, uint32_t flags, int ret,
			  const struct rxe_create_qp_resp *resp)
{
	if (ret || !flags || (resp->db_flags & flags) == flags)
		return ret;
	verbs_err(verbs_get_ctx(qp->vqp.qp.context),
		  "rxe: asked for doorbell flags %#x, granted %#x\n",
		  flags, resp->db_flags);
	ibv_cmd_destroy_qp(&qp->vqp.qp);
	return EPROTO;
}

int rxe_db_cmd_create_qp(struct ibv_pd *pd, struct rxe_qp *qp,
			 struct ibv_qp_init_attr *attr,
			 struct urxe_create_qp *cmd,
			 struct urxe_create_qp_resp *resp)
{
	struct rxe_context *ctx = to_rctx(pd->context);
	uint32_t flags = rxe_db_request(ctx, 0);
	int ret;

	cmd->drv_payload.flags = flags;
	ret = ibv_cmd_create_qp(pd, &qp->vqp.qp, attr, &cmd->ibv_cmd,
				flags ? sizeof(*cmd) : sizeof(cmd->ibv_cmd),
				&resp->ibv_resp, sizeof(*resp));
	if (!rxe_db_retry(ctx, flags, ret))
		return rxe_db_granted(qp, flags, ret, &resp->drv_payload);

	memset(&cmd->drv_payload, 0, sizeof(cmd->drv_payload));
	memset(resp, 0, sizeof(*resp));
	ret = ibv_cmd_create_qp(pd, &qp->vqp.qp, attr, &cmd->ibv_cmd,
				sizeof(cmd->ibv_cmd), &resp->ibv_resp,
				sizeof(*resp));
	if (!ret)
		rxe_db_no_kernel(ctx);
	return ret;
}

int rxe_db_cmd_create_qp_ex(struct ibv_context *context, struct rxe_qp *qp,
			    struct ibv_qp_init_attr_ex *attr, uint32_t want,
			    struct urxe_create_qp_ex *cmd,
			    struct urxe_create_qp_ex_resp *resp)
{
	struct rxe_context *ctx = to_rctx(context);
	uint32_t flags = rxe_db_request(ctx, want);
	int ret;

	if (want && !flags)
		return EOPNOTSUPP;	/* known to have no doorbell pages */

	cmd->drv_payload.flags = flags;
	ret = ibv_cmd_create_qp_ex2(context, &qp->vqp, attr, &cmd->ibv_cmd,
				    flags ? sizeof(*cmd) : sizeof(cmd->ibv_cmd),
				    &resp->ibv_resp, sizeof(*resp), NULL);
	if (!rxe_db_retry(ctx, flags, ret))
		return rxe_db_granted(qp, flags, ret, &resp->drv_payload);

	memset(&cmd->drv_payload, 0, sizeof(cmd->drv_payload));
	memset(resp, 0, sizeof(*resp));
	ret = ibv_cmd_create_qp_ex2(context, &qp->vqp, attr, &cmd->ibv_cmd,
				    sizeof(cmd->ibv_cmd), &resp->ibv_resp,
				    sizeof(*resp), NULL);
	if (ret)
		return ret;
	rxe_db_no_kernel(ctx);
	if (!want)
		return 0;
	/* a peer QP without a doorbell is of no use to the peer */
	ibv_cmd_destroy_qp(&qp->vqp.qp);
	return EOPNOTSUPP;
}

static struct rxe_db_page *rxe_db_page_get(struct rxe_context *ctx,
					   uint64_t offset)
{
	long pgsz = sysconf(_SC_PAGESIZE);
	struct rxe_db_page *page;

	pthread_mutex_lock(&ctx->db.lock);
	list_for_each(&ctx->db.pages, page, entry)
		if (page->offset == offset)
			goto found;

	page = calloc(1, sizeof(*page));
	if (!page)
		goto err;
	/* the kernel lets only this context map it, and exactly one page */
	page->addr = mmap(NULL, pgsz, PROT_READ | PROT_WRITE, MAP_SHARED,
			  ctx->ibv_ctx.context.cmd_fd, offset);
	if (page->addr == MAP_FAILED) {
		free(page);
		goto err;
	}
	page->offset = offset;
	list_add_tail(&ctx->db.pages, &page->entry);
found:
	page->refs++;
	pthread_mutex_unlock(&ctx->db.lock);
	return page;

err:
	pthread_mutex_unlock(&ctx->db.lock);
	return NULL;
}

static void rxe_db_page_put(struct rxe_context *ctx, struct rxe_db_page *page)
{
	pthread_mutex_lock(&ctx->db.lock);
	if (!--page->refs) {
		list_del(&page->entry);
		munmap(page->addr, sysconf(_SC_PAGESIZE));
		free(page);
	}
	pthread_mutex_unlock(&ctx->db.lock);
}

/* Map the QP's doorbell page, if the kernel gave it a slot. */
int rxe_db_qp_init(struct rxe_qp *qp, const struct rxe_create_qp_resp *resp)
{
	struct rxe_context *ctx = to_rctx(qp->vqp.qp.context);
	long slots = sysconf(_SC_PAGESIZE) / RXE_DB_SLOT_SIZE;
	struct rxe_db_page *page;

	memset(&qp->db, 0, sizeof(qp->db));
	if (!(resp->db_flags & RXE_CREATE_QP_DOORBELL))
		return 0;
	if (resp->db_index >= slots) {
		verbs_err(&ctx->ibv_ctx, "rxe: doorbell slot %u beyond the page\n",
			  resp->db_index);
		return EPROTO;
	}
	page = rxe_db_page_get(ctx, resp->db_offset);
	if (!page) {
		verbs_err(&ctx->ibv_ctx,
			  "rxe: cannot map the doorbell page at %#llx: %s\n",
			  (unsigned long long)resp->db_offset, strerror(errno));
		return errno;
	}
	qp->db.page = page;
	qp->db.slot = (struct rxe_db_slot *)page->addr + resp->db_index;
	qp->db.index = resp->db_index;
	qp->db.flags = resp->db_flags;
	qp->db.cpu_rings = !ctx->db.syscall;
	return 0;
}

/* After the kernel destroyed the QP (or on a failed create). */
void rxe_db_qp_cleanup(struct rxe_qp *qp)
{
	if (!qp->db.page)
		return;
	rxe_db_page_put(to_rctx(qp->vqp.qp.context), qp->db.page);
	memset(&qp->db, 0, sizeof(qp->db));
}

/*
 * Ring for the WQEs up to the SQ's producer index. Called with the SQ lock
 * held, after store_producer_index(), so that the slot sees producer
 * indices in order. Returns whether the caller must also kick (the empty
 * POST_SEND) once it dropped the lock.
 */
bool rxe_db_ring(struct rxe_qp *qp)
{
	struct rxe_qp_db *db = &qp->db;
	uint32_t prod;

	/* a staged QP's WQEs wait for a peer's ring; a kick releases nothing */
	if (db->flags & RXE_CREATE_QP_DOORBELL_STAGED)
		return false;
	if (!db->cpu_rings)
		return true;

	prod = load_producer_index(qp->sq.queue);
	/* release: after the WQEs and the producer index in the queue */
	atomic_store_explicit(db_word(&db->slot->sq_prod), htole32(prod),
			      memory_order_release);
	/*
	 * Pairs with the smp_mb() in rxe_db_disarm() (kernel,
	 * rxe_db_engine.c), which sets RXE_DB_NEED_WAKEUP and then looks at
	 * sq_prod once more: either we see the flag and kick, or the engine
	 * sees our ring.
	 */
	atomic_thread_fence(memory_order_seq_cst);
	return le32toh(atomic_load_explicit(db_word(&db->slot->flags),
					    memory_order_relaxed)) &
	       RXE_DB_NEED_WAKEUP;
}
