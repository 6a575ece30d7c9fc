// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * The CPU proxy of the peer doorbell verbs: the fallback for a staged QP
 * whose provider cannot hand its doorbell to a peer (no provider support,
 * a kernel without doorbell pages), the generic form of NVSHMEM's
 * cpu_host_memory NIC handler, DOCA's CPU proxy and NCCL GIN's proxy.
 *
 * - The peer gets a shadow doorbell: a page of host memory that any
 *   DMA-capable device imports as a dma-buf and the CPU maps. Where the
 *   kernel offers it (UVERBS_OBJECT_SHADOW_DB), the page belongs to the
 *   uverbs core and its dma-buf is revoked like the provider's doorbell
 *   when the QP or the context goes; else it comes from the kernel's
 *   system dma-buf heap (rdma-core's dmabuf_heap.c), which never revokes.
 * - ibv_post_send() on the QP stages: the context's post_send op is
 *   wrapped, and the WRs of a proxy QP are copied into a library ring
 *   instead of reaching the provider. The producer index of that ring is
 *   what ibv_peer_query_sq() reports and what the peer rings with.
 * - One proxy thread per context watches the shadow doorbells of its QPs
 *   and releases the WRs up to each ring through the provider's own
 *   post_send, so the NIC is driven exactly as by the application.
 *   Adaptively, as the kernel's rxe doorbell engine: it polls without
 *   pause for spin_us after the last ring, then sleeps with a doubling
 *   interval up to sleep_us (IBV_PEER_PROXY_SPIN_US,
 *   IBV_PEER_PROXY_SLEEP_US). ibv_peer_probe_db() reports both.
 *
 * Lifetime and locking:
 * - proxies_lock guards the list of proxies (for fork), the creation of
 *   a context's proxy and the opening of its heap.
 * - proxy->qps_lock (rwlock) guards proxy->qps: the thread and the
 *   post_send wrapper look up under the read lock, create and destroy
 *   change the list under the write lock. A QP taken out of the list is
 *   never touched by the thread again.
 * - pq->lock orders the ring: staging (application threads) and releasing
 *   (the proxy thread) of one QP.
 * - proxy->thread_lock guards starting and stopping the thread; the
 *   thread runs while the context has proxy QPs.
 * - When the QP goes, a kernel shadow's dma-buf is revoked: the importer
 *   is told and its mapping ends, as with the provider's doorbell. A heap
 *   page handed to a peer stays alive instead; a late ring then writes a
 *   page no thread watches, and reaches no QP: as a retired rxe doorbell
 *   slot.
 * - fork: the child has no proxy thread; its proxies are marked dead so
 *   that destroying a QP or closing the context in the child never waits
 *   for a thread, and never destroys a kernel shadow, which is the
 *   parent's.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <endian.h>

#include <ccan/list.h>
#include <infiniband/cmd_ioctl.h>
#include <rdma/ib_user_ioctl_cmds.h>
#include <infiniband/driver.h>
#include <infiniband/dmabuf_heap.h>
#include <infiniband/peer_db.h>

#include "ibverbs.h"
#include "peer_proxy.h"

#define PROXY_SPIN_US_DEFAULT	50
#define PROXY_SLEEP_US_DEFAULT	200
#define PROXY_SLEEP_US_MAX	100000

typedef int (*post_send_fn)(struct ibv_qp *qp, struct ibv_send_wr *wr,
			    struct ibv_send_wr **bad_wr);

struct peer_proxy {
	struct list_node	entry;		/* in proxies */
	struct ibv_context	*context;
	post_send_fn		post_send;	/* the provider's */
	pthread_rwlock_t	qps_lock;
	struct list_head	qps;
	pthread_mutex_t		thread_lock;
	pthread_t		thread;
	bool			running;	/* thread started, not joined */
	bool			dead;		/* in a fork child: no thread */
	atomic_bool		stop;
	/*
	 * the system heap, opened on the first QP that gets no kernel shadow
	 * doorbell (proxies_lock), or NULL
	 */
	struct ibv_dmabuf_heap	*heap;
	unsigned int		spin_us;
	unsigned int		sleep_us;
};

/* A staged WR, with its own copy of the SGEs and inline data. */
struct peer_proxy_wr {
	struct ibv_send_wr	wr;
};

struct peer_proxy_qp {
	struct list_node	entry;		/* in peer_proxy.qps */
	struct peer_proxy	*proxy;
	struct ibv_qp		*qp;
	pthread_mutex_t		lock;
	uint32_t		cnt;		/* ring entries, a power of two */
	uint32_t		max_sge;
	uint32_t		max_inline;
	struct peer_proxy_wr	*wrs;
	struct ibv_sge		*sges;		/* max_sge per entry */
	uint8_t			*inl;		/* max_inline bytes per entry */
	/* staged up to; what ibv_peer_query_sq() gives as prod_index */
	_Atomic(uint32_t)	prod;
	/* released up to; the cons_index */
	_Atomic(uint32_t)	released;
	/* the last shadow value the thread looked at; thread only */
	uint32_t		seen;
	/* the last valid ring: release up to it; thread only */
	uint32_t		target;
	bool			error;		/* an invalid ring: QP in error */
	uint32_t		reason;		/* why not the provider's doorbell */
	void			*page;		/* the shadow doorbell page */
	size_t			page_size;
	int			dmabuf_fd;
	/* the page is a kernel UVERBS_OBJECT_SHADOW_DB: revoked on destroy */
	bool			kernel_shadow;
	uint32_t		shadow_handle;
};

static pthread_mutex_t proxies_lock = PTHREAD_MUTEX_INITIALIZER;
static LIST_HEAD(proxies);
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static _Atomic(uint32_t) *shadow_db(struct peer_proxy_qp *pq)
{
	return (_Atomic(uint32_t) *)pq->page;
}

static unsigned int env_us(const char *name, unsigned int def)
{
	const char *s = getenv(name);
	char *end;
	unsigned long v;

	if (!s || !*s)
		return def;
	v = strtoul(s, &end, 10);
	if (*end || v > PROXY_SLEEP_US_MAX)
		return def;
	return v;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ull + ts.tv_nsec / 1000;
}

static struct peer_proxy_qp *find_qp(struct peer_proxy *proxy,
				     struct ibv_qp *qp)
{
	struct peer_proxy_qp *pq;

	list_for_each(&proxy->qps, pq, entry)
		if (pq->qp == qp)
			return pq;
	return NULL;
}

static struct peer_proxy *ctx_proxy(struct ibv_context *context)
{
	return atomic_load_explicit(&get_priv(context)->peer_proxy,
				    memory_order_acquire);
}

/*
 * The proxy QP of qp with its proxy's read lock held, or NULL (no lock
 * held). Called by the verbs; the thread walks the list itself.
 */
static struct peer_proxy_qp *get_qp(struct ibv_qp *qp)
{
	struct peer_proxy *proxy = ctx_proxy(qp->context);
	struct peer_proxy_qp *pq;

	if (!proxy)
		return NULL;
	pthread_rwlock_rdlock(&proxy->qps_lock);
	pq = find_qp(proxy, qp);
	if (!pq)
		pthread_rwlock_unlock(&proxy->qps_lock);
	return pq;
}

static void put_qp(struct peer_proxy_qp *pq)
{
	pthread_rwlock_unlock(&pq->proxy->qps_lock);
}

/* ---- staging: the application's ibv_post_send() ---- */

static int stage_one(struct peer_proxy_qp *pq, const struct ibv_send_wr *wr)
{
	uint32_t mask = pq->cnt - 1;
	uint32_t prod = atomic_load_explicit(&pq->prod, memory_order_relaxed);
	struct peer_proxy_wr *e = &pq->wrs[prod];
	struct ibv_sge *sge = &pq->sges[(size_t)prod * pq->max_sge];
	uint8_t *inl = pq->inl + (size_t)prod * pq->max_inline;
	uint32_t len = 0;
	int i;

	/* one entry stays free: full is prod + 1 == released */
	if (((prod + 1) & mask) ==
	    atomic_load_explicit(&pq->released, memory_order_acquire))
		return ENOMEM;
	if (wr->num_sge < 0 || (uint32_t)wr->num_sge > pq->max_sge)
		return EINVAL;
	switch (wr->opcode) {
	case IBV_WR_SEND:
	case IBV_WR_SEND_WITH_IMM:
	case IBV_WR_SEND_WITH_INV:
	case IBV_WR_RDMA_WRITE:
	case IBV_WR_RDMA_WRITE_WITH_IMM:
	case IBV_WR_RDMA_READ:
	case IBV_WR_ATOMIC_CMP_AND_SWP:
	case IBV_WR_ATOMIC_FETCH_AND_ADD:
		break;
	default:
		/* TSO headers and MW binds point at memory we would have to own */
		return EOPNOTSUPP;
	}

	e->wr = *wr;
	e->wr.next = NULL;
	e->wr.sg_list = sge;
	if (wr->send_flags & IBV_SEND_INLINE) {
		/* the caller may reuse inline data once the post returned */
		for (i = 0; i < wr->num_sge; i++)
			len += wr->sg_list[i].length;
		if (len > pq->max_inline)
			return EINVAL;
		len = 0;
		for (i = 0; i < wr->num_sge; i++) {
			memcpy(inl + len,
			       (void *)(uintptr_t)wr->sg_list[i].addr,
			       wr->sg_list[i].length);
			len += wr->sg_list[i].length;
		}
		sge->addr = (uintptr_t)inl;
		sge->length = len;
		sge->lkey = 0;
		e->wr.num_sge = len ? 1 : 0;
	} else if (wr->num_sge) {
		memcpy(sge, wr->sg_list, sizeof(*sge) * wr->num_sge);
	}
	/* release: the entry before the index that publishes it */
	atomic_store_explicit(&pq->prod, (prod + 1) & mask,
			      memory_order_release);
	return 0;
}

/* The context's post_send while it has a proxy. */
static int proxy_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr,
			   struct ibv_send_wr **bad_wr)
{
	struct peer_proxy *proxy = ctx_proxy(qp->context);
	struct peer_proxy_qp *pq = get_qp(qp);
	int ret = 0;

	if (!pq)
		return proxy->post_send(qp, wr, bad_wr);
	pthread_mutex_lock(&pq->lock);
	for (; wr; wr = wr->next) {
		ret = pq->error ? EINVAL : stage_one(pq, wr);
		if (ret) {
			*bad_wr = wr;
			break;
		}
	}
	pthread_mutex_unlock(&pq->lock);
	put_qp(pq);
	return ret;
}

/* ---- releasing: the proxy thread ---- */

/* Hand the staged WRs [released, to) to the provider; pq->lock held. */
static void release(struct peer_proxy_qp *pq, uint32_t to)
{
	struct peer_proxy *proxy = pq->proxy;
	uint32_t mask = pq->cnt - 1;
	uint32_t from = atomic_load_explicit(&pq->released,
					     memory_order_relaxed);
	struct ibv_send_wr *first = NULL, **link = &first, *bad = NULL;
	uint32_t i, n = 0;
	int ret;

	for (i = from; i != to; i = (i + 1) & mask) {
		*link = &pq->wrs[i].wr;
		link = &pq->wrs[i].wr.next;
		*link = NULL;
		n++;
	}
	if (!n)
		return;
	ret = proxy->post_send(pq->qp, first, &bad);
	if (ret && bad) {
		/* the NIC's queue is full: the rest goes on a later pass */
		n = 0;
		for (i = from; &pq->wrs[i].wr != bad; i = (i + 1) & mask)
			n++;
	} else if (ret) {
		n = 0;
	}
	atomic_store_explicit(&pq->released, (from + n) & mask,
			      memory_order_release);
}

/*
 * One look at a QP's shadow doorbell. Returns whether there was work.
 * The rules are the kernel rxe engine's (docs/rxe-doorbell.md): a value
 * inside the staged, unreleased part releases up to it; a value inside the
 * ring but outside that part is spurious and ignored; a value beyond the
 * ring moves the QP to the error state, and its staged WRs flush.
 */
static bool service(struct peer_proxy_qp *pq)
{
	/*
	 * acquire: pairs with the peer's store of the doorbell, which the
	 * peer orders after whatever the released sends must see
	 */
	uint32_t val = le32toh(atomic_load_explicit(shadow_db(pq),
						    memory_order_acquire));
	uint32_t mask = pq->cnt - 1;
	struct ibv_qp_attr attr = { .qp_state = IBV_QPS_ERR };
	uint32_t released, prod;

	/* target only moves here, and released only in release(): both ours */
	if (val == pq->seen &&
	    atomic_load_explicit(&pq->released, memory_order_relaxed) ==
	    pq->target)
		return false;
	pthread_mutex_lock(&pq->lock);
	released = atomic_load_explicit(&pq->released, memory_order_relaxed);
	prod = atomic_load_explicit(&pq->prod, memory_order_acquire);
	if (val != pq->seen) {
		pq->seen = val;
		if (val > mask) {
			if (!pq->error) {
				pq->error = true;
				ibv_modify_qp(pq->qp, &attr, IBV_QP_STATE);
			}
		} else if (((val - released) & mask) <=
			   ((prod - released) & mask)) {
			pq->target = val;
		}
	}
	/* in error, everything staged goes: it flushes */
	if (pq->error)
		pq->target = prod;
	/* a full NIC queue leaves the rest for the next look */
	release(pq, pq->target);
	pthread_mutex_unlock(&pq->lock);
	return true;
}

static void *proxy_thread(void *arg)
{
	struct peer_proxy *proxy = arg;
	uint64_t last = now_us();
	unsigned int nap = 1;
	struct peer_proxy_qp *pq;
	struct timespec ts;
	bool work;

	while (!atomic_load_explicit(&proxy->stop, memory_order_acquire)) {
		work = false;
		pthread_rwlock_rdlock(&proxy->qps_lock);
		list_for_each(&proxy->qps, pq, entry)
			work |= service(pq);
		pthread_rwlock_unlock(&proxy->qps_lock);
		if (work) {
			last = now_us();
			nap = 1;
			continue;
		}
		if (now_us() - last < proxy->spin_us)
			continue;
		/* idle: sleep, a little longer each time, up to sleep_us */
		ts.tv_sec = nap / 1000000;
		ts.tv_nsec = (nap % 1000000) * 1000L;
		nanosleep(&ts, NULL);
		nap = nap * 2 < proxy->sleep_us ? nap * 2 : proxy->sleep_us;
	}
	return NULL;
}

/* proxy->thread_lock held */
static int start_thread(struct peer_proxy *proxy)
{
	int ret;

	if (proxy->running || proxy->dead)
		return proxy->dead ? EIO : 0;
	atomic_store(&proxy->stop, false);
	ret = pthread_create(&proxy->thread, NULL, proxy_thread, proxy);
	if (ret)
		return ret;
	proxy->running = true;
	return 0;
}

/* proxy->thread_lock held */
static void stop_thread(struct peer_proxy *proxy)
{
	if (!proxy->running)
		return;
	atomic_store_explicit(&proxy->stop, true, memory_order_release);
	pthread_join(proxy->thread, NULL);
	proxy->running = false;
}

/* ---- fork ---- */

/*
 * The thread holds qps_lock for reading while it looks at the QPs: take
 * every proxy's write lock, so that the child's copies are unlocked and
 * no QP is half released.
 */
static void atfork_prepare(void)
{
	struct peer_proxy *proxy;

	pthread_mutex_lock(&proxies_lock);
	list_for_each(&proxies, proxy, entry)
		pthread_rwlock_wrlock(&proxy->qps_lock);
}

static void atfork_parent(void)
{
	struct peer_proxy *proxy;

	list_for_each(&proxies, proxy, entry)
		pthread_rwlock_unlock(&proxy->qps_lock);
	pthread_mutex_unlock(&proxies_lock);
}

/* The child has no proxy thread: nothing may wait for one. */
static void atfork_child(void)
{
	struct peer_proxy *proxy;

	list_for_each(&proxies, proxy, entry) {
		proxy->running = false;
		proxy->dead = true;
		pthread_mutex_init(&proxy->thread_lock, NULL);
		pthread_rwlock_unlock(&proxy->qps_lock);
	}
	pthread_mutex_unlock(&proxies_lock);
}

static void register_atfork(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* ---- creating and destroying ---- */

/* The context's proxy, created on first use; proxies_lock held. */
static struct peer_proxy *proxy_get(struct ibv_context *context)
{
	struct verbs_ex_private *priv = get_priv(context);
	struct peer_proxy *proxy = ctx_proxy(context);
	pthread_rwlockattr_t rwattr;

	if (proxy)
		return proxy;
	proxy = calloc(1, sizeof(*proxy));
	if (!proxy)
		return NULL;
	proxy->context = context;
	proxy->spin_us = env_us("IBV_PEER_PROXY_SPIN_US", PROXY_SPIN_US_DEFAULT);
	proxy->sleep_us = env_us("IBV_PEER_PROXY_SLEEP_US", PROXY_SLEEP_US_DEFAULT);
	if (!proxy->sleep_us)
		proxy->sleep_us = 1;
	/*
	 * The thread takes the read lock again and again: a QP's create or
	 * destroy must not starve behind it.
	 */
	pthread_rwlockattr_init(&rwattr);
	pthread_rwlockattr_setkind_np(&rwattr,
				      PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&proxy->qps_lock, &rwattr);
	pthread_rwlockattr_destroy(&rwattr);
	pthread_mutex_init(&proxy->thread_lock, NULL);
	list_head_init(&proxy->qps);
	proxy->post_send = context->ops.post_send;
	list_add_tail(&proxies, &proxy->entry);
	/* release: the proxy is complete before posts can find it */
	atomic_store_explicit(&priv->peer_proxy, proxy, memory_order_release);
	/*
	 * From here on every post of the context passes the wrapper; QPs that
	 * are not the proxy's go straight to the provider's op.
	 */
	context->ops.post_send = proxy_post_send;
	return proxy;
}

/* ---- the shadow doorbell page ---- */

/*
 * A shadow doorbell of the uverbs core (UVERBS_OBJECT_SHADOW_DB): mapped
 * from the command fd, exported by UVERBS_METHOD_DMABUF_ALLOC as the
 * providers export their doorbells. Returns 0 or an errno; EOPNOTSUPP and
 * EPROTONOSUPPORT mean the kernel or the device has none.
 */
static int shadow_alloc_kernel(struct ibv_context *context,
			       struct peer_proxy_qp *pq)
{
	DECLARE_COMMAND_BUFFER(cmd, UVERBS_OBJECT_SHADOW_DB,
			       UVERBS_METHOD_SHADOW_DB_ALLOC, 3);
	struct ib_uverbs_attr *handle;
	uint64_t offset, length;
	void *page;
	int ret;

	handle = fill_attr_out_obj(cmd, UVERBS_ATTR_SHADOW_DB_ALLOC_HANDLE);
	fill_attr_out_ptr(cmd, UVERBS_ATTR_SHADOW_DB_ALLOC_MMAP_OFFSET, &offset);
	fill_attr_out_ptr(cmd, UVERBS_ATTR_SHADOW_DB_ALLOC_MMAP_LENGTH, &length);
	ret = execute_ioctl(context, cmd);
	if (ret)
		return ret;
	pq->shadow_handle = read_attr_obj(UVERBS_ATTR_SHADOW_DB_ALLOC_HANDLE,
					  handle);
	pq->kernel_shadow = true;
	pq->page_size = length;

	page = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED,
		    context->cmd_fd, offset);
	if (page == MAP_FAILED)
		return errno;
	pq->page = page;
	pq->dmabuf_fd = ibv_cmd_export_dmabuf_fd(context, offset);
	if (pq->dmabuf_fd < 0)
		return errno;
	return 0;
}

static int shadow_destroy_kernel(struct ibv_context *context,
				 uint32_t handle)
{
	DECLARE_COMMAND_BUFFER(cmd, UVERBS_OBJECT_SHADOW_DB,
			       UVERBS_METHOD_SHADOW_DB_DESTROY, 1);

	fill_attr_in_obj(cmd, UVERBS_ATTR_SHADOW_DB_DESTROY_HANDLE, handle);
	return execute_ioctl(context, cmd);
}

/*
 * The shadow doorbell of a new proxy QP: the kernel's, which revokes like
 * a real doorbell, else a page of the system dma-buf heap.
 */
static int shadow_alloc(struct ibv_context *context, struct peer_proxy_qp *pq)
{
	struct verbs_context *vctx = verbs_get_ctx(context);
	struct peer_proxy *proxy = pq->proxy;
	struct ibv_dmabuf_heap *heap;
	int ret;

	ret = shadow_alloc_kernel(context, pq);
	if (ret != EOPNOTSUPP && ret != EPROTONOSUPPORT) {
		if (ret)
			verbs_err(vctx, "peer proxy: cannot set up a kernel shadow doorbell: %s\n",
				  strerror(ret));
		return ret;
	}
	pthread_mutex_lock(&proxies_lock);
	if (!proxy->heap)
		proxy->heap = ibv_dmabuf_heap_system_init();
	heap = proxy->heap;
	pthread_mutex_unlock(&proxies_lock);
	if (!heap) {
		verbs_err(vctx, "peer proxy: neither kernel shadow doorbells nor a system dma-buf heap (/dev/dma_heap/system)\n");
		return EOPNOTSUPP;
	}
	pq->page_size = sysconf(_SC_PAGESIZE);
	pq->page = ibv_dmabuf_heap_alloc(heap, pq->page_size, &pq->dmabuf_fd);
	if (!pq->page) {
		ret = errno;
		verbs_err(vctx, "peer proxy: cannot allocate a shadow doorbell: %s\n",
			  strerror(ret));
		return ret;
	}
	return 0;
}

/* Revokes a kernel shadow's exports first: importers let go of the page. */
static void shadow_free(struct peer_proxy_qp *pq)
{
	struct ibv_context *context = pq->proxy->context;
	int ret;

	if (!pq->kernel_shadow) {
		if (pq->page)
			ibv_dmabuf_heap_free(pq->page, pq->page_size,
					     pq->dmabuf_fd);
		return;
	}
	/*
	 * A fork child shares the parent's uverbs objects: it lets go of its
	 * copies of the mapping and the dma-buf only.
	 */
	ret = pq->proxy->dead ? 0 :
		shadow_destroy_kernel(context, pq->shadow_handle);
	if (ret)
		/* the kernel destroys it with the context at the latest */
		verbs_err(verbs_get_ctx(context),
			  "peer proxy: destroying the shadow doorbell failed: %s\n",
			  strerror(ret));
	if (pq->page)
		munmap(pq->page, pq->page_size);
	if (pq->dmabuf_fd >= 0)
		close(pq->dmabuf_fd);
}

static void free_qp(struct peer_proxy_qp *pq)
{
	if (pq->proxy)
		shadow_free(pq);
	pthread_mutex_destroy(&pq->lock);
	free(pq->wrs);
	free(pq->sges);
	free(pq->inl);
	free(pq);
}

static uint32_t roundup_pow2(uint32_t n)
{
	uint32_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

struct ibv_qp *peer_proxy_create_qp(struct ibv_context *context,
				    struct ibv_qp_init_attr_ex *qp_attr,
				    const struct ibv_peer_qp_init_attr *peer_attr,
				    uint32_t reason)
{
	struct verbs_context *vctx = verbs_get_ctx(context);
	struct peer_proxy *proxy;
	struct peer_proxy_qp *pq;
	int ret;

	if (!(peer_attr->flags & IBV_PEER_QP_STAGED)) {
		verbs_err(vctx, "peer proxy: only staged QPs (IBV_PEER_QP_STAGED) ring through the CPU proxy\n");
		errno = EOPNOTSUPP;
		return NULL;
	}
	if (qp_attr->comp_mask & IBV_QP_INIT_ATTR_SEND_OPS_FLAGS) {
		verbs_err(vctx, "peer proxy: a proxy QP stages ibv_post_send() only, not ibv_wr_*()\n");
		errno = EOPNOTSUPP;
		return NULL;
	}
	if (qp_attr->cap.max_send_wr >= 1u << 30) {
		errno = EINVAL;
		return NULL;
	}

	pq = calloc(1, sizeof(*pq));
	if (!pq) {
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&pq->lock, NULL);
	pq->dmabuf_fd = -1;
	pq->reason = reason;

	pthread_once(&atfork_once, register_atfork);
	pthread_mutex_lock(&proxies_lock);
	proxy = proxy_get(context);
	pthread_mutex_unlock(&proxies_lock);
	if (!proxy)
		goto err;
	pq->proxy = proxy;

	ret = shadow_alloc(context, pq);
	if (ret) {
		errno = ret;
		goto err;
	}

	pq->qp = ibv_create_qp_ex(context, qp_attr);
	if (!pq->qp)
		goto err;
	/* the provider's caps, after it rounded them up */
	pq->cnt = roundup_pow2(qp_attr->cap.max_send_wr + 1);
	pq->max_sge = qp_attr->cap.max_send_sge ? qp_attr->cap.max_send_sge : 1;
	pq->max_inline = qp_attr->cap.max_inline_data;
	pq->wrs = calloc(pq->cnt, sizeof(*pq->wrs));
	pq->sges = calloc((size_t)pq->cnt * pq->max_sge, sizeof(*pq->sges));
	pq->inl = calloc(pq->cnt, pq->max_inline ? pq->max_inline : 1);
	if (!pq->wrs || !pq->sges || !pq->inl) {
		errno = ENOMEM;
		goto err_qp;
	}

	pthread_rwlock_wrlock(&proxy->qps_lock);
	list_add_tail(&proxy->qps, &pq->entry);
	pthread_rwlock_unlock(&proxy->qps_lock);

	pthread_mutex_lock(&proxy->thread_lock);
	ret = start_thread(proxy);
	pthread_mutex_unlock(&proxy->thread_lock);
	if (ret) {
		verbs_err(vctx, "peer proxy: cannot start the proxy thread: %s\n",
			  strerror(ret));
		pthread_rwlock_wrlock(&proxy->qps_lock);
		list_del(&pq->entry);
		pthread_rwlock_unlock(&proxy->qps_lock);
		errno = ret;
		goto err_qp;
	}
	return pq->qp;

err_qp:
	ret = errno;
	get_ops(context)->destroy_qp(pq->qp);
	errno = ret;
err:
	ret = errno;
	free_qp(pq);
	errno = ret;
	return NULL;
}

struct peer_proxy_qp *peer_proxy_detach_qp(struct ibv_qp *qp)
{
	struct peer_proxy *proxy = ctx_proxy(qp->context);
	struct peer_proxy_qp *pq;

	if (!proxy)
		return NULL;
	pthread_rwlock_wrlock(&proxy->qps_lock);
	pq = find_qp(proxy, qp);
	if (pq)
		list_del(&pq->entry);
	pthread_rwlock_unlock(&proxy->qps_lock);
	return pq;
}

void peer_proxy_destroy_qp(struct peer_proxy_qp *pq, int destroy_ret)
{
	struct peer_proxy *proxy = pq->proxy;
	bool idle;

	if (destroy_ret) {
		pthread_rwlock_wrlock(&proxy->qps_lock);
		list_add_tail(&proxy->qps, &pq->entry);
		pthread_rwlock_unlock(&proxy->qps_lock);
		return;
	}
	free_qp(pq);

	/* no QP left to watch: the thread ends until the next proxy QP */
	pthread_mutex_lock(&proxy->thread_lock);
	pthread_rwlock_rdlock(&proxy->qps_lock);
	idle = list_empty(&proxy->qps);
	pthread_rwlock_unlock(&proxy->qps_lock);
	if (idle)
		stop_thread(proxy);
	pthread_mutex_unlock(&proxy->thread_lock);
}

void peer_proxy_close(struct ibv_context *context)
{
	struct verbs_ex_private *priv = get_priv(context);
	struct peer_proxy *proxy = ctx_proxy(context);
	struct peer_proxy_qp *pq, *next;

	if (!proxy)
		return;
	pthread_mutex_lock(&proxy->thread_lock);
	stop_thread(proxy);
	pthread_mutex_unlock(&proxy->thread_lock);

	pthread_mutex_lock(&proxies_lock);
	list_del(&proxy->entry);
	pthread_mutex_unlock(&proxies_lock);

	/* QPs the application did not destroy go with the context */
	list_for_each_safe(&proxy->qps, pq, next, entry) {
		list_del(&pq->entry);
		free_qp(pq);
	}
	context->ops.post_send = proxy->post_send;
	atomic_store(&priv->peer_proxy, NULL);
	if (proxy->heap)
		ibv_dmabuf_heap_destroy(proxy->heap);
	pthread_rwlock_destroy(&proxy->qps_lock);
	pthread_mutex_destroy(&proxy->thread_lock);
	free(proxy);
}

/* ---- the peer verbs on a proxy QP ---- */

int peer_proxy_query_sq(struct ibv_qp *qp, struct ibv_peer_sq_attr *attr)
{
	struct peer_proxy_qp *pq = get_qp(qp);

	if (!pq)
		return 1;
	/* WQEs are the library's ibv_send_wr copies: CPU-staged sends only */
	attr->wqe_format = IBV_PEER_WQE_FORMAT_NONE;
	attr->wqe_cnt = pq->cnt;
	attr->max_sge = pq->max_sge;
	attr->max_inline = pq->max_inline;
	attr->max_batch = pq->cnt - 1;
	attr->prod_index = &pq->prod;
	attr->cons_index = &pq->released;
	attr->index_format = IBV_PEER_INDEX_WRAPPED;
	attr->index_width = sizeof(uint32_t);
	attr->index_byte_order = __BYTE_ORDER == __LITTLE_ENDIAN ?
		IBV_PEER_LITTLE_ENDIAN : IBV_PEER_BIG_ENDIAN;
	attr->flags = IBV_PEER_SQ_STAGED | IBV_PEER_SQ_RING_BY_PEER |
		      IBV_PEER_SQ_DEDICATED_DB | IBV_PEER_SQ_PROXY;
	attr->db = pq->page;
	attr->db_width = sizeof(uint32_t);
	attr->db_byte_order = IBV_PEER_LITTLE_ENDIAN;
	attr->db_value = IBV_PEER_DB_VALUE_PROD_INDEX;
	put_qp(pq);
	return 0;
}

int peer_proxy_export_db(struct ibv_qp *qp, uint32_t flags,
			 struct ibv_peer_db_dmabuf *dmabuf)
{
	struct peer_proxy_qp *pq = get_qp(qp);
	int fd;

	if (!pq)
		return 1;
	/* the same dma-buf each time; the peer holds its own reference */
	fd = fcntl(pq->dmabuf_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		put_qp(pq);
		return errno;
	}
	dmabuf->fd = fd;
	dmabuf->offset = 0;
	dmabuf->length = pq->page_size;
	/* a shadow page of its own: EXCLUSIVE holds */
	dmabuf->flags = IBV_PEER_DMABUF_DEDICATED;
	/* the kernel's shadow is write-only for peers, as rxe's doorbell */
	if (pq->kernel_shadow)
		dmabuf->flags |= IBV_PEER_DMABUF_WRITE_ONLY |
				 IBV_PEER_DMABUF_REVOCABLE;
	put_qp(pq);
	return 0;
}

int peer_proxy_probe_db(struct ibv_qp *qp, struct ibv_peer_db_caps *caps)
{
	struct peer_proxy_qp *pq = get_qp(qp);

	if (!pq)
		return 1;
	caps->method = IBV_PEER_DB_METHOD_PROXY;
	caps->methods = 1u << IBV_PEER_DB_METHOD_PROXY;
	caps->reason = pq->reason;
	caps->backing = IBV_PEER_DB_BACKING_HOST;
	caps->flags = IBV_PEER_DB_CAPS_DEDICATED | IBV_PEER_DB_CAPS_STAGED;
	caps->max_ring_delay_us = pq->proxy->sleep_us;
	caps->comp_mask |= IBV_PEER_DB_CAPS_MASK_PROXY_COST;
	caps->proxy_spin_us = pq->proxy->spin_us;
	put_qp(pq);
	return 0;
}
