// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * The rxe provider and the peer doorbell verbs (<infiniband/peer_db.h>),
 * through libibverbs only. The peer that imports a doorbell dma-buf and
 * rings it is the p2p_mmap_test module (its "attach" and "write" commands).
 *
 *   peer_db DEV threads T N M    T threads, 2 QPs, N sends in all, mixing
 *                                ibv_post_send(), post lists and ibv_wr_*();
 *                                exactly N completions; M: page (the QPs
 *                                have a doorbell) or none
 *   peer_db DEV wqe-format       the builder writes what the provider writes
 *   peer_db DEV flow ROUNDS      query, build with the builder, export, the
 *                                peer rings, complete; CQ read as a peer
 *   peer_db DEV export           export works; errnos of bad arguments, a
 *                                plain QP, a shared page, a foreign context
 *   peer_db DEV shared           a shared page's export rings its neighbours
 *   peer_db DEV dedicated MODE   a dedicated page's export rings no other QP;
 *                                a destroyed QP's page no longer exports
 *   peer_db DEV staged MODE      posts wait for a ring, which releases them
 *   peer_db DEV probe KIND       the probe's answer: doorbells, off, stock,
 *                                noops (a provider without the ops)
 *   peer_db DEV removed          after "rdma link delete" (a line on stdin)
 *
 * MODE is "need" (the kernel must grant it) or "may" (a kernel that
 * refuses it with EOPNOTSUPP skips the subtest, saying so).
 * Prints TAP; exits non-zero if a check failed.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include <infiniband/rxe_peer_wqe.h>

#include "verbs_test.h"
#include "p2p_test_tap.h"

/* rdma-core's private verb for UVERBS_METHOD_DMABUF_ALLOC (driver.h) */
int ibv_cmd_export_dmabuf_fd(struct ibv_context *ctx, off_t pg_off);

static const char *dev_name;
static long page_size;

static struct ibv_peer_sq_attr query_sq(struct ibv_qp *qp)
{
	struct ibv_peer_sq_attr a;
	int ret = ibv_peer_query_sq(qp, &a, sizeof(a));

	if (ret)
		die("ibv_peer_query_sq: %s", strerror(ret));
	return a;
}

/* Completions on cq within ms; each must be a success. */
static int completions(struct ibv_cq *cq, int max, int ms)
{
	return vt_wait_cq(cq, max, ms, NULL);
}

/* ---- many threads, one completion per send ---- */

struct t_qp {
	struct vt_qp q;
	atomic_int credits;	/* WQEs that may still be posted */
};

struct t_shared {
	struct t_qp qp[2];
	int nthr;
	long per_thread;
	atomic_long done;
	atomic_uchar *seen;	/* per wr_id, how many completions */
	atomic_long bad;
};

struct t_arg {
	pthread_t t;
	int id;
	struct t_shared *s;
};

/* Reap what completed on the QP's CQ, whichever thread posted it. */
static void t_reap(struct t_shared *s, struct t_qp *tq)
{
	struct ibv_wc wc[16];
	int k, i;

	k = ibv_poll_cq(tq->q.cq, 16, wc);
	if (k < 0)
		die("poll cq");
	for (i = 0; i < k; i++) {
		if (wc[i].status != IBV_WC_SUCCESS ||
		    wc[i].wr_id >= (uint64_t)s->nthr * s->per_thread ||
		    atomic_fetch_add(&s->seen[wc[i].wr_id], 1)) {
			fprintf(stderr, "# bad completion wr_id %" PRIu64 " status %s\n",
				wc[i].wr_id, ibv_wc_status_str(wc[i].status));
			atomic_fetch_add(&s->bad, 1);
		}
	}
	if (k > 0) {
		atomic_fetch_add(&tq->credits, k);
		atomic_fetch_add(&s->done, k);
	}
}

static void t_take(struct t_shared *s, struct t_qp *tq, int n)
{
	double end = vt_now_us() + 30e6;
	int c;

	for (;;) {
		c = atomic_load(&tq->credits);
		if (c >= n && atomic_compare_exchange_weak(&tq->credits, &c, c - n))
			return;
		t_reap(s, tq);
		if (vt_now_us() > end)
			die("no completion for 30 s: %ld of %ld done",
			    atomic_load(&s->done), s->nthr * s->per_thread);
	}
}

/* Style by thread: 0 single posts, 1 post lists, 2 ibv_wr_*, 3 ibv_wr_* batches. */
static void *t_main(void *arg)
{
	struct t_arg *ta = arg;
	struct t_shared *s = ta->s;
	struct t_qp *tq = &s->qp[ta->id % 2];
	struct vt_qp *q = &tq->q;
	struct ibv_qp_ex *qx = ibv_qp_to_qp_ex(q->qp);
	unsigned int seed = ta->id + 1;
	long i = 0, base = ta->id * s->per_thread;
	size_t src = 4096 + 64 * ta->id, dst = 65536 + 64 * ta->id;

	while (i < s->per_thread) {
		int style = ta->id % 4, n = style & 1 ? 4 : 1, j, ret;
		struct ibv_send_wr wr[4], *bad;
		struct ibv_sge sge[4];

		if (n > s->per_thread - i)
			n = s->per_thread - i;
		t_take(s, tq, n);
		if (style < 2) {
			for (j = 0; j < n; j++) {
				vt_write_wr(q, &wr[j], &sge[j], base + i + j, src, dst, 8);
				wr[j].next = j + 1 < n ? &wr[j + 1] : NULL;
			}
			ret = ibv_post_send(q->qp, wr, &bad);
		} else {
			ibv_wr_start(qx);
			for (j = 0; j < n; j++) {
				qx->wr_id = base + i + j;
				qx->wr_flags = IBV_SEND_SIGNALED;
				ibv_wr_rdma_write(qx, q->d->mr->rkey,
						  (uintptr_t)q->d->buf + dst);
				ibv_wr_set_sge(qx, q->d->mr->lkey,
					       (uintptr_t)q->d->buf + src, 8);
			}
			ret = ibv_wr_complete(qx);
		}
		if (ret)
			die("thread %d post: %s", ta->id, strerror(ret));
		i += n;
		t_reap(s, tq);
		/* now and then stay away longer than the engine's idle time */
		if (rand_r(&seed) % 128 == 0)
			usleep(rand_r(&seed) % 3000);
	}
	return NULL;
}

/* mode: page (QPs ring through the page) or none (they have no doorbell) */
static void t_threads(int nthr, long total, const char *mode)
{
	int page_mode = !strcmp(mode, "page");
	struct t_shared s = { .nthr = nthr, .per_thread = total / nthr };
	struct t_arg *ta = calloc(nthr, sizeof(*ta));
	struct ibv_peer_sq_attr a;
	struct vt_dev d;
	long extra = 0, i, once = 0;
	int k, err;

	vt_dev_open(&d, dev_name);
	s.seen = calloc(nthr * s.per_thread, 1);
	for (k = 0; k < 2; k++) {
		err = vt_qp_create(&d, &s.qp[k].q, VT_PLAIN_QP, 64);
		if (err)
			die("create qp: %s", strerror(err));
		vt_qp_connect(&s.qp[k].q);
		s.qp[k].credits = 63;
		a = query_sq(s.qp[k].q.qp);
		check(page_mode == !!a.db, "qp %d: doorbell %p, want %s", k,
		      a.db, mode);
	}
	for (k = 0; k < nthr; k++) {
		ta[k] = (struct t_arg){ .id = k, .s = &s };
		pthread_create(&ta[k].t, NULL, t_main, &ta[k]);
	}
	for (k = 0; k < nthr; k++)
		pthread_join(ta[k].t, NULL);
	/* all posted: collect the rest, then make sure nothing more comes */
	while (atomic_load(&s.done) < nthr * s.per_thread) {
		double end = vt_now_us() + 30e6;
		long before = atomic_load(&s.done);

		while (atomic_load(&s.done) == before && vt_now_us() < end)
			for (k = 0; k < 2; k++)
				t_reap(&s, &s.qp[k]);
		if (atomic_load(&s.done) == before)
			break;
	}
	usleep(200000);
	for (k = 0; k < 2; k++) {
		struct ibv_wc wc;

		while (ibv_poll_cq(s.qp[k].q.cq, 1, &wc) > 0)
			extra++;
	}
	for (i = 0; i < nthr * s.per_thread; i++)
		if (s.seen[i] != 1 && once++ < 5)
			fprintf(stderr, "# wr_id %ld completed %d times\n", i, s.seen[i]);
	printf("# %ld sends, %ld completions, %ld more after, %ld bad\n",
	       nthr * s.per_thread, atomic_load(&s.done), extra,
	       atomic_load(&s.bad));
	check(atomic_load(&s.done) == nthr * s.per_thread && !extra &&
	      !atomic_load(&s.bad) && !once,
	      "%d threads, %ld sends: exactly one completion each", nthr,
	      nthr * s.per_thread);
	for (k = 0; k < 2; k++)
		vt_qp_destroy(&s.qp[k].q);
	vt_dev_close(&d);
	free(s.seen);
	free(ta);
}

/* ---- the builder writes what the provider writes ---- */

static int wqe_same(const struct rxe_send_wqe *p, const struct rxe_send_wqe *b,
		    int inline_len)
{
	if (memcmp(&p->wr, &b->wr, sizeof(p->wr)) || p->iova != b->iova ||
	    p->dma.length != b->dma.length || p->dma.num_sge != b->dma.num_sge)
		return 0;
	if (inline_len)
		return !memcmp(p->dma.inline_data, b->dma.inline_data, inline_len);
	return !memcmp(p->dma.sge, b->dma.sge, b->dma.num_sge * sizeof(b->dma.sge[0]));
}

static void t_wqe_format(void)
{
	static const char *const names[] = { "RDMA WRITE, 2 SGEs",
		"RDMA WRITE with immediate", "SEND inline", "SEND with immediate" };
	struct ibv_peer_sq_attr a;
	struct vt_dev d;
	struct vt_qp q;
	int k, err;

	vt_dev_open(&d, dev_name);
	err = vt_qp_create(&d, &q, VT_PLAIN_QP, 16);
	if (err)
		die("create qp: %s", strerror(err));
	vt_qp_connect(&q);
	a = query_sq(q.qp);
	check(a.wqe_format == IBV_PEER_WQE_FORMAT_RXE &&
	      a.wqe_size >= sizeof(struct rxe_send_wqe) &&
	      !(a.wqe_cnt & (a.wqe_cnt - 1)) && a.wqe_cnt >= 16 &&
	      a.index_format == IBV_PEER_INDEX_WRAPPED && a.index_width == 4 &&
	      a.max_batch == a.wqe_cnt - 1 && a.max_sge >= 2,
	      "the SQ layout: rxe WQEs of %u bytes, %u of them, %u SGEs",
	      a.wqe_size, a.wqe_cnt, a.max_sge);

	for (k = 0; k < 4; k++) {
		uint8_t expect[1024] __attribute__((aligned(8))) = {};
		struct rxe_send_wqe *b = (void *)expect, *p;
		struct ibv_send_wr wr = {}, *bad;
		struct ibv_sge sge[2];
		uint32_t prod = *(volatile uint32_t *)a.prod_index;
		uint64_t raddr = (uintptr_t)d.buf + 65536;
		int inl = 0;

		if (a.wqe_size > sizeof(expect))
			die("WQE of %u bytes", a.wqe_size);
		sge[0] = (struct ibv_sge){ (uintptr_t)d.buf + 4096, 8, d.mr->lkey };
		sge[1] = (struct ibv_sge){ (uintptr_t)d.buf + 8192, 16, d.mr->lkey };
		wr.wr_id = 1000 + k;
		wr.sg_list = sge;
		wr.send_flags = IBV_SEND_SIGNALED;
		switch (k) {
		case 0:
			wr.opcode = IBV_WR_RDMA_WRITE;
			wr.num_sge = 2;
			wr.wr.rdma.remote_addr = raddr;
			wr.wr.rdma.rkey = d.mr->rkey;
			rxe_peer_wqe_start(b, IBV_WR_RDMA_WRITE, wr.wr_id, wr.send_flags);
			rxe_peer_wqe_set_rdma(b, raddr, d.mr->rkey);
			rxe_peer_wqe_add_sge(b, sge[0].addr, sge[0].length, sge[0].lkey);
			rxe_peer_wqe_add_sge(b, sge[1].addr, sge[1].length, sge[1].lkey);
			break;
		case 1:
			wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
			wr.num_sge = 1;
			wr.imm_data = htobe32(0x1234);
			wr.wr.rdma.remote_addr = raddr;
			wr.wr.rdma.rkey = d.mr->rkey;
			rxe_peer_wqe_start(b, wr.opcode, wr.wr_id, wr.send_flags);
			rxe_peer_wqe_set_rdma(b, raddr, d.mr->rkey);
			rxe_peer_wqe_set_imm(b, wr.imm_data);
			rxe_peer_wqe_add_sge(b, sge[0].addr, sge[0].length, sge[0].lkey);
			break;
		case 2:
			memcpy(d.buf + 4096, "inline payload", 14);
			sge[0].length = 14;
			wr.opcode = IBV_WR_SEND;
			wr.num_sge = 1;
			wr.send_flags |= IBV_SEND_INLINE;
			inl = 14;
			rxe_peer_wqe_start(b, wr.opcode, wr.wr_id, wr.send_flags);
			rxe_peer_wqe_set_inline(b, d.buf + 4096, 14);
			break;
		case 3:
			wr.opcode = IBV_WR_SEND_WITH_IMM;
			wr.num_sge = 1;
			wr.imm_data = htobe32(0xabcd);
			rxe_peer_wqe_start(b, wr.opcode, wr.wr_id, wr.send_flags);
			rxe_peer_wqe_set_imm(b, wr.imm_data);
			rxe_peer_wqe_add_sge(b, sge[0].addr, sge[0].length, sge[0].lkey);
			break;
		}
		/* sends and immediates consume a receive at the other end */
		if (wr.opcode != IBV_WR_RDMA_WRITE) {
			struct ibv_recv_wr rwr = {}, *rbad;
			struct ibv_sge rsge = { (uintptr_t)d.buf + 131072, 64, d.mr->lkey };

			rwr.sg_list = &rsge;
			rwr.num_sge = 1;
			if (ibv_post_recv(q.peer, &rwr, &rbad))
				die("post recv");
		}
		err = ibv_post_send(q.qp, &wr, &bad);
		if (err)
			die("post: %s", strerror(err));
		if (completions(q.cq, 1, 10000) != 1)
			die("no completion for %s", names[k]);
		while (ibv_poll_cq(q.peer_cq, 1, &(struct ibv_wc){}) > 0)
			;
		/* the kernel updates only its own fields of the WQE */
		p = (void *)((uint8_t *)a.buf + (size_t)prod * a.wqe_size);
		check(wqe_same(p, b, inl), "builder and provider agree: %s", names[k]);
	}
	vt_qp_destroy(&q);
	vt_dev_close(&d);
}

/* ---- the peer flow: query, build, export, the peer rings, complete ---- */

/* Read CQEs as a peer would, through the queried layout; ibv_poll_cq() agrees. */
static void cq_as_peer(struct ibv_cq *cq, uint64_t first_wr_id, int n)
{
	struct ibv_peer_cq_attr c;
	uint32_t cons, prod;
	double end = vt_now_us() + 10e6;
	int i, ok = 1;

	if (ibv_peer_query_cq(cq, &c, sizeof(c)))
		die("ibv_peer_query_cq: %s", strerror(errno));
	cons = *(volatile uint32_t *)c.cons_index;
	do {
		prod = __atomic_load_n((uint32_t *)c.prod_index, __ATOMIC_ACQUIRE);
	} while (((prod - cons) & (c.cqe_cnt - 1)) < (uint32_t)n && vt_now_us() < end);
	for (i = 0; i < n; i++) {
		struct ib_uverbs_wc *wc = (void *)((uint8_t *)c.buf +
			(size_t)((cons + i) & (c.cqe_cnt - 1)) * c.cqe_size);
		struct ibv_wc v;

		if (wc->wr_id != first_wr_id + i || wc->status != IBV_WC_SUCCESS)
			ok = 0;
		if (ibv_poll_cq(cq, 1, &v) != 1 || v.wr_id != wc->wr_id)
			ok = 0;
	}
	check(ok && c.cqe_format == IBV_PEER_CQE_FORMAT_UVERBS_WC &&
	      c.cqe_size >= sizeof(struct ib_uverbs_wc),
	      "%d CQEs read through the queried CQ ring match ibv_poll_cq()", n);
}

static void t_flow(int rounds)
{
	struct ibv_peer_db_dmabuf x;
	struct ibv_peer_sq_attr a;
	struct rxe_peer_sq sq;
	struct vt_dev d;
	struct vt_qp q;
	uint64_t wr_id = 1;
	int r, i, err;

	vt_dev_open(&d, dev_name);
	err = vt_qp_create(&d, &q, IBV_PEER_QP_RING_BY_PEER, 32);
	if (err)
		die("ibv_peer_create_qp: %s", strerror(err));
	vt_qp_connect(&q);
	a = query_sq(q.qp);
	check(a.db && a.db_width == 4 && a.db_byte_order == IBV_PEER_LITTLE_ENDIAN &&
	      a.db_value == IBV_PEER_DB_VALUE_PROD_INDEX &&
	      (a.flags & IBV_PEER_SQ_RING_BY_PEER) &&
	      !(a.flags & (IBV_PEER_SQ_STAGED | IBV_PEER_SQ_DEDICATED_DB)),
	      "a peer QP has a doorbell: %p, %u bytes, flags %#x", a.db,
	      a.db_width, a.flags);

	err = ibv_peer_export_db(q.qp, 0, &x, sizeof(x));
	check(!err && x.fd >= 0 && x.length == (uint64_t)page_size &&
	      lseek(x.fd, 0, SEEK_END) == page_size &&
	      x.offset == ((uintptr_t)a.db & (page_size - 1)) &&
	      x.flags == (IBV_PEER_DMABUF_WRITE_ONLY | IBV_PEER_DMABUF_REVOCABLE),
	      "export: fd %d, offset %" PRIu64 " of %" PRIu64 ", flags %#x: %s",
	      x.fd, x.offset, x.length, x.flags, strerror(err));
	if (err)
		return;
	/* hand it to the peer, which keeps its own reference */
	err = p2p_test_ctl("attach %d", x.fd);
	check(!err, "the peer imported the doorbell: %s", strerror(err));
	close(x.fd);
	if (err)
		return;

	/* the peer (a thread of ours here) builds the WQEs, the device rings */
	rxe_peer_sq_init(&sq, a.buf, a.wqe_size, a.wqe_cnt, a.prod_index,
			 a.cons_index, NULL);
	for (r = 0; r < rounds; r++) {
		int n = 1 + r % 8, ok = 1;

		if (rxe_peer_sq_room(&sq) < (uint32_t)n)
			die("ring full");
		for (i = 0; i < n; i++) {
			struct rxe_send_wqe *w = rxe_peer_sq_wqe(&sq, sq.prod + i);
			uint64_t v = wr_id + i;

			memcpy(d.buf + 4096 + 8 * i, &v, 8);
			rxe_peer_wqe_start(w, IBV_WR_RDMA_WRITE, v, IBV_SEND_SIGNALED);
			rxe_peer_wqe_set_rdma(w, (uintptr_t)d.buf + 65536 + 8 * i,
					      d.mr->rkey);
			rxe_peer_wqe_add_sge(w, (uintptr_t)d.buf + 4096 + 8 * i, 8,
					     d.mr->lkey);
		}
		rxe_peer_sq_produce(&sq, n);
		/* every other round after the engine went to sleep */
		if (r & 1)
			usleep(50000);
		err = p2p_test_ctl("write %d %" PRIu64 " %x", IMP_FOREIGN, x.offset, sq.prod);
		if (err)
			die("peer ring: %s", strerror(err));
		cq_as_peer(q.cq, wr_id, n);
		for (i = 0; i < n; i++) {
			uint64_t v;

			memcpy(&v, d.buf + 65536 + 8 * i, 8);
			if (v != wr_id + i)
				ok = 0;
		}
		check(ok, "round %d: %d WQEs built by the peer, rung through the dma-buf, their data arrived",
		      r, n);
		wr_id += n;
	}
	p2p_test_ctl("detach");
	vt_qp_destroy(&q);
	vt_dev_close(&d);
}

/* ---- export: what works and the errnos ---- */

static void t_export(void)
{
	struct ibv_peer_db_dmabuf x, y;
	struct ibv_peer_sq_attr a;
	struct vt_qp plain, peer;
	struct vt_dev d, d2;
	uint64_t off;
	int ret, fd;

	vt_dev_open(&d, dev_name);
	if (vt_qp_create(&d, &plain, VT_PLAIN_QP, 16) ||
	    vt_qp_create(&d, &peer, IBV_PEER_QP_RING_BY_PEER, 16))
		die("create qps: %s", strerror(errno));

	ret = ibv_peer_export_db(peer.qp, 0, &x, sizeof(x));
	check(!ret && x.fd >= 0, "export works: fd %d", x.fd);
	ret = ibv_peer_export_db(peer.qp, 0, &y, sizeof(y));
	check(!ret && y.fd >= 0 && y.fd != x.fd, "a second export works: fd %d", y.fd);
	close(x.fd);
	close(y.fd);

	errno = 0;
	ret = ibv_peer_export_db(NULL, 0, &x, sizeof(x));
	check(ret == EINVAL && errno == EINVAL, "NULL QP: %s", strerror(ret));
	ret = ibv_peer_export_db(peer.qp, 0, NULL, sizeof(x));
	check(ret == EINVAL, "NULL result: %s", strerror(ret));
	errno = 0;
	ret = ibv_peer_export_db(peer.qp, 0, &x, offsetof(struct ibv_peer_db_dmabuf, length));
	check(ret == EINVAL && errno == EINVAL, "inlen too small: %s", strerror(ret));
	ret = ibv_peer_export_db(peer.qp, 1u << 7, &x, sizeof(x));
	check(ret == EOPNOTSUPP && errno == EOPNOTSUPP, "unknown flags: %s", strerror(ret));
	errno = 0;
	ret = ibv_peer_export_db(plain.qp, 0, &x, sizeof(x));
	check(ret == EINVAL && errno == EINVAL,
	      "a QP not created for peer rings: %s", strerror(ret));
	errno = 0;
	ret = ibv_peer_export_db(peer.qp, IBV_PEER_EXPORT_EXCLUSIVE, &x, sizeof(x));
	check(ret == EPERM && errno == EPERM,
	      "an exclusive export of a shared page: %s", strerror(ret));

	/* a larger struct than ours: the tail comes back cleared */
	{
		uint8_t big[sizeof(x) + 16];

		memset(big, 0xa5, sizeof(big));
		ret = ibv_peer_export_db(peer.qp, 0, (void *)big, sizeof(big));
		check(!ret && big[sizeof(x)] == 0 && big[sizeof(big) - 1] == 0,
		      "a newer caller's larger struct: tail cleared");
		if (!ret)
			close(((struct ibv_peer_db_dmabuf *)big)->fd);
	}

	/*
	 * A foreign context: another open of the device forges an export of
	 * our page's mmap offset. Raw uverbs (ibv_cmd_export_dmabuf_fd) on
	 * purpose: the library never sends another context's offset.
	 */
	a = query_sq(peer.qp);
	off = vt_mmap_offset(a.db);
	vt_dev_open(&d2, dev_name);
	errno = 0;
	fd = ibv_cmd_export_dmabuf_fd(d2.ctx, off);
	check(fd < 0 && errno == EINVAL,
	      "another context cannot export our doorbell page (offset %#" PRIx64 "): %s",
	      off, strerror(errno));
	if (fd >= 0)
		close(fd);
	fd = ibv_cmd_export_dmabuf_fd(d.ctx, off);
	check(fd >= 0, "the owning context can (the same forged call)");
	if (fd >= 0)
		close(fd);
	vt_dev_close(&d2);

	vt_qp_destroy(&plain);
	vt_qp_destroy(&peer);
	vt_dev_close(&d);
}

/* ---- pages: a shared export grants its neighbours, a dedicated one not ---- */

/* Stage one WQE on q with the builder, without ringing: prod index after it. */
static uint32_t stage_unrung(struct vt_qp *q, uint64_t wr_id)
{
	struct ibv_peer_sq_attr a = query_sq(q->qp);
	struct rxe_peer_sq sq;
	struct rxe_send_wqe *w;

	rxe_peer_sq_init(&sq, a.buf, a.wqe_size, a.wqe_cnt, a.prod_index,
			 a.cons_index, a.db);
	w = rxe_peer_sq_next(&sq);
	rxe_peer_wqe_start(w, IBV_WR_RDMA_WRITE, wr_id, IBV_SEND_SIGNALED);
	rxe_peer_wqe_set_rdma(w, (uintptr_t)q->d->buf + 65536, q->d->mr->rkey);
	rxe_peer_wqe_add_sge(w, (uintptr_t)q->d->buf + 4096, 8, q->d->mr->lkey);
	rxe_peer_sq_produce(&sq, 1);
	return sq.prod;
}

/* The engine's worst case until it notices a peer's ring, with margin. */
static int ring_wait_ms(struct ibv_qp *qp)
{
	struct ibv_peer_db_caps c;

	if (ibv_peer_probe_db(qp, NULL, &c, sizeof(c)))
		die("probe: %s", strerror(errno));
	return c.max_ring_delay_us / 1000 * 3 + 200;
}

static void t_shared(void)
{
	struct ibv_peer_sq_attr aa, ab;
	struct ibv_peer_db_dmabuf x;
	struct vt_dev d;
	struct vt_qp a, b;
	uint32_t prod;
	int err;

	vt_dev_open(&d, dev_name);
	if (vt_qp_create(&d, &a, IBV_PEER_QP_RING_BY_PEER, 16) ||
	    vt_qp_create(&d, &b, IBV_PEER_QP_RING_BY_PEER, 16))
		die("create: %s", strerror(errno));
	vt_qp_connect(&a);
	vt_qp_connect(&b);
	aa = query_sq(a.qp);
	ab = query_sq(b.qp);
	if (((uintptr_t)aa.db & ~(page_size - 1)) != ((uintptr_t)ab.db & ~(page_size - 1)))
		die("two peer QPs of one context got different pages");
	err = ibv_peer_export_db(a.qp, 0, &x, sizeof(x));
	if (err || p2p_test_ctl("attach %d", x.fd))
		die("export and attach: %s", strerror(err ?: errno));
	close(x.fd);
	check(!(x.flags & IBV_PEER_DMABUF_DEDICATED), "a shared page's export says so");
	prod = stage_unrung(&b, 7);
	err = p2p_test_ctl("write %d %lu %x", IMP_FOREIGN, (unsigned long)((uintptr_t)ab.db & (page_size - 1)), prod);
	check(!err && completions(b.cq, 1, ring_wait_ms(b.qp)) == 1,
	      "A's export rings B in the same page (documented: a shared page grants all its QPs)");
	p2p_test_ctl("detach");
	vt_qp_destroy(&a);
	vt_qp_destroy(&b);
	vt_dev_close(&d);
}

static int need_or_skip(int err, const char *mode, const char *what)
{
	if (!err)
		return 1;
	if (err == EOPNOTSUPP && !strcmp(mode, "may")) {
		printf("ok %d - # SKIP the kernel refuses %s (EOPNOTSUPP)\n", ++tests, what);
		return 0;
	}
	check(0, "%s: %s", what, strerror(err));
	return 0;
}

static void t_dedicated(const char *mode)
{
	struct ibv_peer_sq_attr aa, ab;
	struct ibv_peer_db_dmabuf x;
	struct ibv_peer_db_caps c;
	struct vt_dev d;
	struct vt_qp a, b;
	uint32_t prod, off;
	uint64_t moff;
	int err, fd, quiet = 1;

	vt_dev_open(&d, dev_name);
	err = vt_qp_create(&d, &a, IBV_PEER_QP_DEDICATED_DB, 16);
	if (!need_or_skip(err, mode, "dedicated doorbell pages")) {
		vt_dev_close(&d);
		return;
	}
	err = vt_qp_create(&d, &b, IBV_PEER_QP_DEDICATED_DB, 16);
	if (err)
		die("second dedicated QP: %s", strerror(err));
	vt_qp_connect(&a);
	vt_qp_connect(&b);
	aa = query_sq(a.qp);
	ab = query_sq(b.qp);
	check((aa.flags & IBV_PEER_SQ_DEDICATED_DB) && (ab.flags & IBV_PEER_SQ_DEDICATED_DB) &&
	      ((uintptr_t)aa.db & ~(page_size - 1)) != ((uintptr_t)ab.db & ~(page_size - 1)),
	      "two dedicated QPs, two pages");
	check(!ibv_peer_probe_db(a.qp, NULL, &c, sizeof(c)) &&
	      (c.flags & IBV_PEER_DB_CAPS_DEDICATED), "the probe says dedicated");
	err = ibv_peer_export_db(a.qp, IBV_PEER_EXPORT_EXCLUSIVE, &x, sizeof(x));
	check(!err && (x.flags & IBV_PEER_DMABUF_DEDICATED),
	      "an exclusive export of a dedicated page: %s", strerror(err));
	if (err || p2p_test_ctl("attach %d", x.fd))
		die("export and attach");
	close(x.fd);

	/* B has a WQE nobody rang; A's dma-buf, every slot of it, rings B's index */
	prod = stage_unrung(&b, 9);
	for (off = 0; off < page_size; off += RXE_DB_SLOT_SIZE)
		if (p2p_test_ctl("write %d %u %x", IMP_FOREIGN, off, prod))
			die("ring at %u", off);
	if (completions(b.cq, 1, ring_wait_ms(b.qp)))
		quiet = 0;
	check(quiet, "A's dedicated export, rung at every slot, never rings B");
	/* B was ringable all along: through its own doorbell it sends */
	rxe_peer_ring(ab.db, prod);
	check(completions(b.cq, 1, ring_wait_ms(b.qp)) == 1, "B rings through its own doorbell");
	p2p_test_ctl("detach");

	/* A destroyed QP's dedicated page is gone with it */
	moff = vt_mmap_offset(aa.db);
	vt_qp_destroy(&a);
	/* raw on purpose: the library has no QP left to export from */
	errno = 0;
	fd = ibv_cmd_export_dmabuf_fd(d.ctx, moff);
	check(fd < 0 && errno == EINVAL,
	      "a destroyed QP's dedicated page no longer exports: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	vt_qp_destroy(&b);
	vt_dev_close(&d);
}

/* ---- staged sends ---- */

static void t_staged(const char *mode)
{
	struct ibv_peer_sq_attr a;
	struct ibv_peer_db_caps c;
	struct vt_dev d;
	struct vt_qp q;
	struct ibv_qp_ex *qx;
	uint32_t prod0;
	int err, i, wait;

	vt_dev_open(&d, dev_name);
	err = vt_qp_create(&d, &q, IBV_PEER_QP_STAGED, 32);
	if (!need_or_skip(err, mode, "staged sends")) {
		vt_dev_close(&d);
		return;
	}
	vt_qp_connect(&q);
	a = query_sq(q.qp);
	wait = ring_wait_ms(q.qp);
	check((a.flags & IBV_PEER_SQ_STAGED) && (a.flags & IBV_PEER_SQ_RING_BY_PEER) &&
	      !ibv_peer_probe_db(q.qp, NULL, &c, sizeof(c)) &&
	      (c.flags & IBV_PEER_DB_CAPS_STAGED), "a staged QP says so");
	prod0 = *(volatile uint32_t *)a.prod_index;

	/* 2 posts and a post list of 2, then 2 through ibv_wr_*: nothing goes */
	for (i = 0; i < 2; i++)
		if (vt_post_write(&q, 10 + i, 4096, 65536, 8))
			die("post");
	{
		struct ibv_send_wr wr[2], *bad;
		struct ibv_sge sge[2];

		vt_write_wr(&q, &wr[0], &sge[0], 12, 4096, 65536, 8);
		vt_write_wr(&q, &wr[1], &sge[1], 13, 4096, 65536, 8);
		wr[0].next = &wr[1];
		if (ibv_post_send(q.qp, wr, &bad))
			die("post list");
	}
	qx = ibv_qp_to_qp_ex(q.qp);
	ibv_wr_start(qx);
	for (i = 0; i < 2; i++) {
		qx->wr_id = 14 + i;
		qx->wr_flags = IBV_SEND_SIGNALED;
		ibv_wr_rdma_write(qx, d.mr->rkey, (uintptr_t)d.buf + 65536);
		ibv_wr_set_sge(qx, d.mr->lkey, (uintptr_t)d.buf + 4096, 8);
	}
	if (ibv_wr_complete(qx))
		die("wr_complete");
	check(completions(q.cq, 6, wait) == 0, "6 staged posts: nothing sent before a ring");

	/* a ring releases up to its value */
	rxe_peer_ring(a.db, (prod0 + 4) & (a.wqe_cnt - 1));
	check(completions(q.cq, 6, wait) == 4, "a ring at +4 releases 4");
	rxe_peer_ring(a.db, (prod0 + 6) & (a.wqe_cnt - 1));
	check(completions(q.cq, 6, wait) == 2, "a ring at +6 releases the other 2");
	/* a value beyond what was posted is spurious: nothing, and no error */
	rxe_peer_ring(a.db, (prod0 + 9) & (a.wqe_cnt - 1));
	if (vt_post_write(&q, 20, 4096, 65536, 8))
		die("post");
	check(completions(q.cq, 1, wait) == 0, "a ring beyond the posted index releases nothing");
	rxe_peer_ring(a.db, (prod0 + 7) & (a.wqe_cnt - 1));
	check(completions(q.cq, 1, wait) == 1, "the QP still works after it");
	vt_qp_destroy(&q);
	vt_dev_close(&d);
}

/* ---- the probe ---- */

static struct ibv_peer_db_caps probe(struct ibv_qp *qp, const struct ibv_peer_desc *p)
{
	struct ibv_peer_db_caps c;
	int ret;

	memset(&c, 0xa5, sizeof(c));
	ret = ibv_peer_probe_db(qp, p, &c, sizeof(c));
	if (ret)
		die("probe: %s", strerror(ret));
	return c;
}

#define CHECK_ANSWER(c, m, r, what)						\
	check((c).method == (m) && (c).reason == (r), "%s: %s (%s)", what,	\
	      ibv_peer_db_method_str((c).method), ibv_peer_db_reason_str((c).reason))

/* A PCI device of this machine, which does DMA, or NULL. */
static const char *a_pci_device(void)
{
	static char path[300];
	FILE *p = popen("ls -d /sys/bus/pci/devices/* 2>/dev/null | head -n1", "r");

	if (!p || !fgets(path, sizeof(path), p)) {
		if (p)
			pclose(p);
		return NULL;
	}
	pclose(p);
	path[strcspn(path, "\n")] = 0;
	return path;
}

static void t_probe_args(struct ibv_qp *qp)
{
	struct ibv_peer_desc p = { .kind = IBV_PEER_SYSFS_DEVICE };
	struct ibv_peer_db_caps c;
	int ret;

	check(ibv_peer_probe_db(NULL, NULL, &c, sizeof(c)) == EINVAL, "probe: NULL QP");
	check(ibv_peer_probe_db(qp, NULL, NULL, sizeof(c)) == EINVAL, "probe: NULL caps");
	check(ibv_peer_probe_db(qp, NULL, &c, 8) == EINVAL && errno == EINVAL,
	      "probe: inlen too small");
	check(ibv_peer_probe_db(qp, &p, &c, sizeof(c)) == EINVAL, "probe: no sysfs path");
	p.sysfs_path = "/tmp";
	check(ibv_peer_probe_db(qp, &p, &c, sizeof(c)) == EINVAL, "probe: not a device");
	p.sysfs_path = "/sys/devices/no-such-device";
	check(ibv_peer_probe_db(qp, &p, &c, sizeof(c)) == EINVAL, "probe: no such device");
	p = (struct ibv_peer_desc){ .kind = 77 };
	check(ibv_peer_probe_db(qp, &p, &c, sizeof(c)) == EOPNOTSUPP, "probe: unknown kind");
	p = (struct ibv_peer_desc){ .comp_mask = 1 };
	check(ibv_peer_probe_db(qp, &p, &c, sizeof(c)) == EOPNOTSUPP, "probe: unknown comp_mask");
	p = (struct ibv_peer_desc){ .reserved = { 1 } };
	ret = ibv_peer_probe_db(qp, &p, &c, sizeof(c));
	check(ret == EINVAL, "probe: reserved bytes: %s", strerror(ret));
	check(!strcmp(ibv_peer_db_reason_str(99), "unknown reason") &&
	      !strcmp(ibv_peer_db_method_str(99), "unknown"), "strings of unknown values");
}

/* Does the provider register dma-buf MRs? A bad fd tells without one. */
static int can_reg_dmabuf(struct vt_dev *d)
{
	struct ibv_mr *mr = ibv_reg_dmabuf_mr(d->pd, 0, 4096, 0, -1, IBV_ACCESS_LOCAL_WRITE);

	if (mr) {
		ibv_dereg_mr(mr);
		return 1;
	}
	return errno != EOPNOTSUPP && errno != ENOSYS;
}

static void t_probe(const char *kind)
{
	struct ibv_peer_desc virt = { .kind = IBV_PEER_SYSFS_DEVICE,
				      .sysfs_path = "/sys/devices/virtual/net/lo" };
	struct ibv_peer_desc pci = { .kind = IBV_PEER_SYSFS_DEVICE };
	struct ibv_peer_desc nic = { .kind = IBV_PEER_RDMA_DEVICE };
	struct ibv_peer_db_caps c;
	struct ibv_peer_sq_attr a;
	struct ibv_peer_db_dmabuf x;
	struct vt_dev d, d2;
	struct vt_qp plain, peer;
	int err;

	vt_dev_open(&d, dev_name);
	if (vt_qp_create(&d, &plain, VT_PLAIN_QP, 16))
		die("create: %s", strerror(errno));

	if (!strcmp(kind, "noops")) {
		struct ibv_qp_init_attr_ex ia = {
			.cap = { .max_send_wr = 4, .max_recv_wr = 4,
				 .max_send_sge = 1, .max_recv_sge = 1 },
			.qp_type = IBV_QPT_RC,
			.comp_mask = IBV_QP_INIT_ATTR_PD, .pd = d.pd,
			.send_cq = plain.cq, .recv_cq = plain.cq,
		};
		struct ibv_peer_qp_init_attr pa = { .flags = IBV_PEER_QP_RING_BY_PEER };
		struct ibv_peer_cq_attr ca;

		c = probe(plain.qp, NULL);
		CHECK_ANSWER(c, IBV_PEER_DB_METHOD_NONE, IBV_PEER_DB_NO_PROVIDER_SUPPORT,
			     "a provider without the ops");
		{
			struct ibv_qp *qp = ibv_peer_create_qp(d.ctx, &ia, &pa, sizeof(pa));

			err = qp ? 0 : errno;
			check(!qp && err == EOPNOTSUPP, "create: %s", strerror(err));
		}
		errno = 0;
		err = ibv_peer_query_sq(plain.qp, &a, sizeof(a));
		check(err == EOPNOTSUPP && errno == EOPNOTSUPP, "query sq: %s", strerror(err));
		errno = 0;
		err = ibv_peer_query_cq(plain.cq, &ca, sizeof(ca));
		check(err == EOPNOTSUPP && errno == EOPNOTSUPP, "query cq: %s", strerror(err));
		errno = 0;
		err = ibv_peer_export_db(plain.qp, 0, &x, sizeof(x));
		check(err == EOPNOTSUPP && errno == EOPNOTSUPP, "export: %s", strerror(err));
		t_probe_args(plain.qp);
		goto out_plain;
	}
	if (!strcmp(kind, "stock")) {
		c = probe(plain.qp, NULL);
		CHECK_ANSWER(c, IBV_PEER_DB_METHOD_NONE, IBV_PEER_DB_KERNEL_TOO_OLD,
			     "stock rxe, a plain QP");
		a = query_sq(plain.qp);
		check(!a.db && a.wqe_format == IBV_PEER_WQE_FORMAT_RXE && !a.flags,
		      "stock rxe: the SQ layout, no doorbell");
		errno = 0;
		err = ibv_peer_export_db(plain.qp, 0, &x, sizeof(x));
		check(err == EOPNOTSUPP && errno == EOPNOTSUPP, "stock rxe: export: %s",
		      strerror(err));
		errno = 0;
		err = vt_qp_create(&d, &peer, IBV_PEER_QP_RING_BY_PEER, 16);
		check(err == EOPNOTSUPP, "stock rxe: a peer QP: %s", strerror(err));
		if (!err)
			vt_qp_destroy(&peer);
		vt_qp_connect(&plain);
		check(!vt_post_write(&plain, 1, 4096, 65536, 8) &&
		      completions(plain.cq, 1, 10000) == 1,
		      "stock rxe: QPs send (system call rings)");
		goto out_plain;
	}

	if (vt_qp_create(&d, &peer, IBV_PEER_QP_RING_BY_PEER, 16))
		die("create peer: %s", strerror(errno));
	if (!strcmp(kind, "off")) {
		c = probe(peer.qp, NULL);
		CHECK_ANSWER(c, IBV_PEER_DB_METHOD_NONE, IBV_PEER_DB_DISABLED,
			     "db_mode=off, a peer QP");
		goto out;
	}
	if (strcmp(kind, "doorbells"))
		die("unknown probe kind %s", kind);

	c = probe(plain.qp, NULL);
	CHECK_ANSWER(c, IBV_PEER_DB_METHOD_NONE, IBV_PEER_DB_QP_NOT_FOR_PEER, "a plain QP");
	c = probe(peer.qp, NULL);
	CHECK_ANSWER(c, IBV_PEER_DB_METHOD_DMABUF, IBV_PEER_DB_OK, "a peer QP, any device");
	check(c.methods == (1u << IBV_PEER_DB_METHOD_DMABUF | 1u << IBV_PEER_DB_METHOD_CPU_MAPPING) &&
	      c.backing == IBV_PEER_DB_BACKING_HOST && !c.flags && c.max_ring_delay_us > 0 &&
	      !c.comp_mask,
	      "methods %#x, host memory, flags %#x, noticed within %u us", c.methods,
	      c.flags, c.max_ring_delay_us);
	c = probe(peer.qp, &virt);
	CHECK_ANSWER(c, IBV_PEER_DB_METHOD_CPU_MAPPING, IBV_PEER_DB_NO_P2P_PATH,
		     "a peer QP, a virtual device");
	pci.sysfs_path = a_pci_device();
	if (pci.sysfs_path) {
		c = probe(peer.qp, &pci);
		CHECK_ANSWER(c, IBV_PEER_DB_METHOD_DMABUF, IBV_PEER_DB_OK,
			     "a peer QP, a PCI device");
	}
	vt_dev_open(&d2, dev_name);
	nic.rdma_ctx = d2.ctx;
	c = probe(peer.qp, &nic);
	if (can_reg_dmabuf(&d2))
		CHECK_ANSWER(c, IBV_PEER_DB_METHOD_DMABUF, IBV_PEER_DB_OK,
			     "a peer QP, an RDMA device with dma-buf MRs");
	else
		CHECK_ANSWER(c, IBV_PEER_DB_METHOD_NONE, IBV_PEER_DB_PEER_CANNOT_IMPORT,
			     "a peer QP, an RDMA device without dma-buf MRs");
	vt_dev_close(&d2);
	/* an older caller's smaller struct: only its part is written */
	{
		struct ibv_peer_db_caps small;

		memset(&small, 0xa5, sizeof(small));
		err = ibv_peer_probe_db(peer.qp, NULL, &small,
					offsetof(struct ibv_peer_db_caps, reserved));
		check(!err && small.method == IBV_PEER_DB_METHOD_DMABUF &&
		      small.reserved[0] == 0xa5, "an older caller's smaller struct");
	}
	t_probe_args(peer.qp);
out:
	vt_qp_destroy(&peer);
out_plain:
	vt_qp_destroy(&plain);
	vt_dev_close(&d);
}

/* ---- after the device was removed under us ---- */

static void t_removed(void)
{
	struct ibv_peer_db_dmabuf x;
	struct ibv_peer_db_caps c;
	struct vt_dev d;
	struct vt_qp q;
	char line[16];
	int err;

	vt_dev_open(&d, dev_name);
	if (vt_qp_create(&d, &q, IBV_PEER_QP_RING_BY_PEER, 16))
		die("create: %s", strerror(errno));
	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		die("stdin");
	errno = 0;
	err = ibv_peer_export_db(q.qp, 0, &x, sizeof(x));
	check(err == EIO && errno == EIO, "export after device removal: %s", strerror(err));
	err = ibv_peer_probe_db(q.qp, NULL, &c, sizeof(c));
	check(err == EIO || (!err && c.method != IBV_PEER_DB_METHOD_NONE),
	      "probe after device removal: %s", strerror(err));
	/* the QP's destroy fails on a removed device; closing cleans up */
	ibv_destroy_qp(q.qp);
	ibv_destroy_cq(q.cq);
	ibv_dealloc_pd(d.pd);
	ibv_close_device(d.ctx);
}

int main(int argc, char **argv)
{
	const char *t;

	if (argc < 3) {
		fprintf(stderr, "usage: %s DEV TEST [ARGS]\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	page_size = sysconf(_SC_PAGESIZE);
	dev_name = argv[1];
	t = argv[2];
	if (!strcmp(t, "threads") && argc >= 6)
		t_threads(atoi(argv[3]), atol(argv[4]), argv[5]);
	else if (!strcmp(t, "wqe-format"))
		t_wqe_format();
	else if (!strcmp(t, "flow") && argc >= 4)
		t_flow(atoi(argv[3]));
	else if (!strcmp(t, "export"))
		t_export();
	else if (!strcmp(t, "shared"))
		t_shared();
	else if (!strcmp(t, "dedicated") && argc >= 4)
		t_dedicated(argv[3]);
	else if (!strcmp(t, "staged") && argc >= 4)
		t_staged(argv[3]);
	else if (!strcmp(t, "probe") && argc >= 4)
		t_probe(argv[3]);
	else if (!strcmp(t, "removed"))
		t_removed();
	else
		die("unknown test %s", t);
	printf("1..%d\n", tests);
	return failed ? 1 : 0;
}
