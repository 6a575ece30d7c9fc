// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * The CPU proxy of the peer doorbell verbs (peer_proxy.c in libibverbs),
 * through the real provider and libibverbs only.
 *
 *   peer_proxy DEV flow auto|force METHOD   staged sends released by the
 *                                 peer's rings on the shadow doorbell:
 *                                 partial, coalesced and spurious rings,
 *                                 inline data copied at post time; the
 *                                 probe reports METHOD (proxy|dma-buf)
 *   peer_proxy DEV teardown       threads end on QP destroy and context
 *                                 close; QP destroy revokes the peer's
 *                                 import of a kernel shadow, and a ring on
 *                                 a heap shadow after it reaches nothing;
 *                                 a fork child closes the context without
 *                                 waiting for a thread or destroying the
 *                                 parent's shadows
 *   peer_proxy DEV garbage        a ring beyond the ring moves the QP to
 *                                 error, its staged sends flush
 *   peer_proxy DEV lat N          N single-send rounds, peer ring to
 *                                 completion: median and p90 in us
 *
 * "auto" lets ibv_peer_create_qp() choose (the proxy on a kernel without
 * doorbell pages), "force" asks for IBV_PEER_QP_PROXY. The peer is the
 * p2p_mmap_test kernel module when it is loaded (a dynamic dma-buf
 * importer that rings through its vmap), otherwise the CPU through an
 * mmap of the dma-buf (Debian's ib_core cannot load our test module; its
 * shadows are heap pages, whose dma-buf the CPU can map).
 */
#include <endian.h>
#include <inttypes.h>
#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "verbs_test.h"
#include "p2p_test_tap.h"

/* The peer: the test module if loaded, else a CPU mapping of the dma-buf. */
struct peer {
	bool module;
	volatile uint32_t *map;
	size_t len;
	uint64_t offset;
};

static void peer_import(struct peer *p, const struct ibv_peer_db_dmabuf *db)
{
	memset(p, 0, sizeof(*p));
	p->offset = db->offset;
	p->len = db->length;
	if (!access(P2P_TEST_CTL, W_OK)) {
		p->module = true;
		if (p2p_test_ctl("attach %d", db->fd))
			die("the module did not import the doorbell");
		return;
	}
	p->map = mmap(NULL, db->length, PROT_READ | PROT_WRITE, MAP_SHARED,
		      db->fd, 0);
	if (p->map == MAP_FAILED)
		die("mmap of the doorbell dma-buf: %s", strerror(errno));
}

static void peer_ring(struct peer *p, uint32_t val)
{
	if (p->module) {
		if (p2p_test_ctl("write %d %" PRIu64 " %" PRIx32, IMP_FOREIGN,
				 p->offset, val))
			die("the module's ring failed");
		return;
	}
	__atomic_store_n(p->map + p->offset / 4, htole32(val), __ATOMIC_RELEASE);
}

static void peer_drop(struct peer *p)
{
	if (p->module)
		p2p_test_ctl("detach");
	else
		munmap((void *)p->map, p->len);
}

static int threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		die("/proc/self/task");
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* A thread count that settles within a second. */
static bool threads_become(int n)
{
	int i;

	for (i = 0; i < 100; i++) {
		if (threads() == n)
			return true;
		usleep(10000);
	}
	return false;
}

static void proxy_qp(struct vt_dev *d, struct vt_qp *q, uint32_t flags)
{
	struct ibv_peer_qp_init_attr pa = { .flags = flags };
	struct ibv_qp_init_attr_ex attr = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 32, .max_recv_wr = 1,
			 .max_send_sge = 2, .max_recv_sge = 1,
			 .max_inline_data = 64 },
		.comp_mask = IBV_QP_INIT_ATTR_PD,
		.pd = d->pd,
	};

	memset(q, 0, sizeof(*q));
	q->d = d;
	q->cq = ibv_create_cq(d->ctx, 128, NULL, NULL, 0);
	if (!q->cq)
		die("create cq");
	attr.send_cq = attr.recv_cq = q->cq;
	q->qp = ibv_peer_create_qp(d->ctx, &attr, &pa, sizeof(pa));
	if (!q->qp)
		die("ibv_peer_create_qp(%#x): %s", flags, strerror(errno));
	vt_qp_connect(q);
}

static uint32_t prod_of(struct ibv_qp *qp)
{
	struct ibv_peer_sq_attr sq;

	if (ibv_peer_query_sq(qp, &sq, sizeof(sq)))
		die("ibv_peer_query_sq: %s", strerror(errno));
	return __atomic_load_n((uint32_t *)sq.prod_index, __ATOMIC_ACQUIRE);
}

static int stage(struct vt_qp *q, int first, int n)
{
	int i;

	for (i = first; i < first + n; i++)
		if (vt_post_write(q, i, 4096 + 8 * (i % 64), 65536 + 8 * (i % 64), 8))
			return -1;
	return 0;
}

static void t_flow(const char *dev, bool force, const char *method)
{
	uint32_t flags = IBV_PEER_QP_STAGED | IBV_PEER_QP_DEDICATED_DB |
			 (force ? IBV_PEER_QP_PROXY : 0);
	struct ibv_peer_db_caps caps;
	struct ibv_peer_sq_attr sq;
	struct ibv_peer_db_dmabuf db;
	struct ibv_send_wr wr, *bad;
	struct ibv_sge sge;
	struct vt_dev d;
	struct vt_qp q;
	struct peer p;
	char msg[16];
	uint32_t prod;
	bool proxy;
	int ret;

	vt_dev_open(&d, dev);
	proxy_qp(&d, &q, flags);

	ret = ibv_peer_probe_db(q.qp, NULL, &caps, sizeof(caps));
	check(!ret && !strcmp(ibv_peer_db_method_str(caps.method),
			      !strcmp(method, "proxy") ? "CPU proxy" : method),
	      "probe: method %s (%s), wanted %s",
	      ibv_peer_db_method_str(caps.method),
	      ibv_peer_db_reason_str(caps.reason), method);
	proxy = caps.method == IBV_PEER_DB_METHOD_PROXY;
	if (proxy) {
		check(caps.methods == 1u << IBV_PEER_DB_METHOD_PROXY &&
		      caps.backing == IBV_PEER_DB_BACKING_HOST &&
		      (caps.comp_mask & IBV_PEER_DB_CAPS_MASK_PROXY_COST) &&
		      caps.max_ring_delay_us > 0 &&
		      (caps.flags & IBV_PEER_DB_CAPS_DEDICATED) &&
		      (caps.flags & IBV_PEER_DB_CAPS_STAGED),
		      "probe: proxy cost: spin %u us after a ring, a look every %u us idle",
		      caps.proxy_spin_us, caps.max_ring_delay_us);
		check(force ? caps.reason == IBV_PEER_DB_OK :
			      caps.reason != IBV_PEER_DB_OK,
		      "probe: reason says why not direct: %s",
		      ibv_peer_db_reason_str(caps.reason));
	}

	ret = ibv_peer_query_sq(q.qp, &sq, sizeof(sq));
	check(!ret && !!(sq.flags & IBV_PEER_SQ_PROXY) == proxy &&
	      sq.db && sq.db_width == 4 &&
	      sq.db_value == IBV_PEER_DB_VALUE_PROD_INDEX &&
	      sq.index_format == IBV_PEER_INDEX_WRAPPED && sq.max_batch >= 16,
	      "query: proxy flag %d, doorbell 4 bytes, producer index, batch %u",
	      !!(sq.flags & IBV_PEER_SQ_PROXY), sq.max_batch);

	ret = ibv_peer_export_db(q.qp, IBV_PEER_EXPORT_EXCLUSIVE, &db, sizeof(db));
	check(!ret && db.fd >= 0 && (db.flags & IBV_PEER_DMABUF_DEDICATED),
	      "export: exclusive dma-buf fd %d offset %" PRIu64, db.fd, db.offset);
	if (ret)
		die("cannot go on without the doorbell");
	peer_import(&p, &db);
	close(db.fd);
	printf("# the peer is %s\n", p.module ? "the p2p_mmap_test module" :
	       "the CPU, through an mmap of the dma-buf");

	/* staged: nothing goes before a ring */
	if (stage(&q, 0, 8))
		die("post: %s", strerror(errno));
	check(vt_wait_cq(q.cq, 1, 300, NULL) == 0, "8 staged sends wait for a ring");

	/* a partial ring releases up to it and no further */
	prod = prod_of(q.qp);
	peer_ring(&p, (prod - 3) & (sq.wqe_cnt - 1));
	check(vt_wait_cq(q.cq, 5, 10000, NULL) == 5 &&
	      vt_wait_cq(q.cq, 1, 300, NULL) == 0,
	      "a ring at prod - 3 completes 5 sends, not more");
	peer_ring(&p, prod);
	check(vt_wait_cq(q.cq, 3, 10000, NULL) == 3, "the ring at prod completes the other 3");

	/* a ring behind the release is spurious */
	peer_ring(&p, (prod - 1) & (sq.wqe_cnt - 1));
	check(vt_wait_cq(q.cq, 1, 300, NULL) == 0, "a ring behind the release sends nothing");

	/* inline data is copied when posted, not when released */
	strcpy(msg, "proxy-1");
	memset(&wr, 0, sizeof(wr));
	sge.addr = (uintptr_t)msg;
	sge.length = 8;
	sge.lkey = 0;
	wr.wr_id = 99;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_RDMA_WRITE;
	wr.send_flags = IBV_SEND_SIGNALED | IBV_SEND_INLINE;
	wr.wr.rdma.remote_addr = (uintptr_t)d.buf + 8192;
	wr.wr.rdma.rkey = d.mr->rkey;
	ret = ibv_post_send(q.qp, &wr, &bad);
	if (ret)
		die("inline post: %s", strerror(ret));
	strcpy(msg, "changed");
	peer_ring(&p, prod_of(q.qp));
	check(vt_wait_cq(q.cq, 1, 10000, NULL) == 1 &&
	      !memcmp(d.buf + 8192, "proxy-1", 8),
	      "inline data as it was at post time arrived");

	/* many rings coalesced into the last */
	if (stage(&q, 100, 20))
		die("post: %s", strerror(errno));
	prod = prod_of(q.qp);
	peer_ring(&p, (prod - 10) & (sq.wqe_cnt - 1));
	peer_ring(&p, prod);
	check(vt_wait_cq(q.cq, 20, 10000, NULL) == 20, "back-to-back rings release all 20");

	/* a full ring refuses the post, as a full send queue */
	ret = 0;
	for (int i = 0; i < (int)sq.wqe_cnt && !ret; i++)
		ret = vt_post_write(&q, 200 + i, 4096, 65536, 8);
	check(ret == ENOMEM, "a full staging ring: ENOMEM (%d)", ret);
	peer_ring(&p, prod_of(q.qp));
	check(vt_wait_cq(q.cq, sq.max_batch, 20000, NULL) == (int)sq.max_batch,
	      "one ring releases a full batch of %u", sq.max_batch);

	peer_drop(&p);
	vt_qp_destroy(&q);
	vt_dev_close(&d);
}

static void t_teardown(const char *dev)
{
	uint32_t flags = IBV_PEER_QP_STAGED | IBV_PEER_QP_PROXY;
	int base = threads();
	struct ibv_peer_db_dmabuf db;
	struct vt_dev d;
	struct vt_qp q, q2;
	struct peer p;
	uint32_t prod;
	pid_t pid;
	int status;

	vt_dev_open(&d, dev);
	base = threads();
	proxy_qp(&d, &q, flags);
	check(threads() == base + 1, "one proxy thread for the context");
	proxy_qp(&d, &q2, flags);
	check(threads() == base + 1, "still one with a second proxy QP");

	/* fork: the child closes the context without waiting for a thread */
	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		alarm(20);
		ibv_close_device(d.ctx);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid)
		die("waitpid");
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "a fork child closed the context and exited (status %#x)", status);

	/* the parent's proxy carries on */
	if (ibv_peer_export_db(q.qp, 0, &db, sizeof(db)))
		die("export: %s", strerror(errno));
	peer_import(&p, &db);
	close(db.fd);
	if (stage(&q, 0, 4))
		die("post");
	peer_ring(&p, prod_of(q.qp));
	check(vt_wait_cq(q.cq, 4, 10000, NULL) == 4, "the parent's proxy still rings after the fork");

	/*
	 * The QP goes. The kernel's shadow (UVERBS_OBJECT_SHADOW_DB) goes like
	 * a doorbell: the peer's import is revoked. A heap shadow stays with
	 * the peer: a ring after the destroy reaches nothing. The other QP
	 * carries on.
	 */
	if (stage(&q, 10, 2))
		die("post");
	prod = prod_of(q.qp);
	vt_qp_destroy(&q);
	if (db.flags & IBV_PEER_DMABUF_REVOCABLE) {
		check(p.module && !p2p_test_ctl("revoked %d proxy-qp-destroy", IMP_FOREIGN),
		      "QP destroyed: the kernel's shadow revoked the peer's import");
	} else {
		peer_ring(&p, prod);
		peer_ring(&p, 0xdeadbeef);
	}
	check(threads() == base + 1, "QP destroyed under the peer: nothing breaks");
	if (stage(&q2, 0, 3))
		die("post");
	{
		struct ibv_peer_db_dmabuf db2;
		struct peer p2;

		if (ibv_peer_export_db(q2.qp, 0, &db2, sizeof(db2)))
			die("export: %s", strerror(errno));
		if (p.module)
			peer_drop(&p);
		peer_import(&p2, &db2);
		close(db2.fd);
		peer_ring(&p2, prod_of(q2.qp));
		check(vt_wait_cq(q2.cq, 3, 10000, NULL) == 3,
		      "the other proxy QP of the context still rings");
		peer_drop(&p2);
		if (!p.module)
			peer_drop(&p);
	}
	vt_qp_destroy(&q2);
	check(threads_become(base), "the last proxy QP destroyed: the thread ended");

	/* context close with a proxy QP left */
	proxy_qp(&d, &q, flags);
	check(threads() == base + 1, "a new proxy QP: a new thread");
	ibv_destroy_qp(q.peer);
	vt_dev_close(&d);
	check(threads_become(base), "context closed with a proxy QP left: the thread ended");
}

static void t_garbage(const char *dev)
{
	struct ibv_peer_db_dmabuf db;
	struct ibv_wc wc;
	struct vt_dev d;
	struct vt_qp q;
	struct peer p;
	int n, ret;

	vt_dev_open(&d, dev);
	proxy_qp(&d, &q, IBV_PEER_QP_STAGED | IBV_PEER_QP_PROXY);
	if (ibv_peer_export_db(q.qp, 0, &db, sizeof(db)))
		die("export: %s", strerror(errno));
	peer_import(&p, &db);
	close(db.fd);
	if (stage(&q, 0, 4))
		die("post");
	peer_ring(&p, 0x7fffffff);
	n = vt_wait_cq(q.cq, 4, 10000, &wc);
	check(n == 4 && wc.status == IBV_WC_WR_FLUSH_ERR,
	      "a ring beyond the ring: 4 staged sends flushed (%d, %s)", n,
	      ibv_wc_status_str(wc.status));
	ret = vt_post_write(&q, 9, 4096, 65536, 8);
	check(ret == EINVAL, "posts to the QP in error fail: %d", ret);
	peer_drop(&p);
	vt_qp_destroy(&q);
	vt_dev_close(&d);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void t_lat(const char *dev, int n, bool force)
{
	uint32_t flags = IBV_PEER_QP_STAGED | IBV_PEER_QP_DEDICATED_DB |
			 (force ? IBV_PEER_QP_PROXY : 0);
	struct ibv_peer_db_caps caps;
	struct ibv_peer_db_dmabuf db;
	double *t = calloc(n, sizeof(*t)), t0;
	struct vt_dev d;
	struct vt_qp q;
	struct peer p;
	int i;

	if (!t)
		die("calloc");
	vt_dev_open(&d, dev);
	proxy_qp(&d, &q, flags);
	if (ibv_peer_probe_db(q.qp, NULL, &caps, sizeof(caps)))
		die("probe");
	if (ibv_peer_export_db(q.qp, 0, &db, sizeof(db)))
		die("export: %s", strerror(errno));
	peer_import(&p, &db);
	close(db.fd);
	for (i = 0; i < n; i++) {
		if (stage(&q, i, 1))
			die("post");
		t0 = vt_now_us();
		peer_ring(&p, prod_of(q.qp));
		if (vt_wait_cq(q.cq, 1, 10000, NULL) != 1)
			die("round %d did not complete", i);
		t[i] = vt_now_us() - t0;
	}
	qsort(t, n, sizeof(*t), cmp_double);
	printf("{\"method\": \"%s\", \"rounds\": %d, \"median_us\": %.1f, \"p90_us\": %.1f}\n",
	       ibv_peer_db_method_str(caps.method), n, t[n / 2], t[n * 9 / 10]);
	peer_drop(&p);
	vt_qp_destroy(&q);
	vt_dev_close(&d);
	free(t);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 5 && !strcmp(argv[2], "flow"))
		t_flow(argv[1], !strcmp(argv[3], "force"), argv[4]);
	else if (argc >= 3 && !strcmp(argv[2], "teardown"))
		t_teardown(argv[1]);
	else if (argc >= 3 && !strcmp(argv[2], "garbage"))
		t_garbage(argv[1]);
	else if (argc >= 5 && !strcmp(argv[2], "lat"))
		t_lat(argv[1], atoi(argv[3]), !strcmp(argv[4], "force"));
	else
		die("usage: %s DEV flow auto|force METHOD | teardown | garbage | lat N auto|force",
		    argv[0]);
	return failed ? 1 : 0;
}
