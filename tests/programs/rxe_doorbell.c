// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * rxe doorbell pages, through the real provider (db_qp.h): libibverbs
 * makes, connects, posts to and rings the QPs; ibv_peer_query_sq() finds
 * their slots, and peers post with the header-only WQE builder and ring
 * with a store. Only what the provider would never do is forged by hand
 * (rxe_db.h), each time saying why.
 *
 *   rxe_doorbell DEV basic [off]      ring, complete, data arrives; ABI checks
 *                                     (off: db_mode=off, every ring kicks)
 *   rxe_doorbell DEV threads T Q N    T threads x Q QPs x N rings, none lost
 *   rxe_doorbell DEV wakeup IDLE_US   need-wakeup after the idle timeout; peer slot
 *   rxe_doorbell DEV garbage          invalid and spurious rings, other QPs carry on
 *   rxe_doorbell DEV isolation        another process cannot map our page
 *   rxe_doorbell DEV destroy-ring     destroy a QP with rings in flight
 *   rxe_doorbell DEV ring-forever [close]  ring until killed (or close mid-ring)
 *   rxe_doorbell DEV queues           queue mmaps: mapping rules, CQ and SRQ resize
 *   rxe_doorbell DEV stale-fork       a forked child rings a destroyed QP's slot
 *   rxe_doorbell DEV stale-dmabuf     a dma-buf importer rings a destroyed QP's slot
 *   rxe_doorbell DEV dedicated        a page of its own: export grants one QP only
 *   rxe_doorbell DEV churn N          N QPs come and go: retired pages are freed
 *
 * The QPs must have doorbells: RXE_DOORBELL must not be "syscall" (basic
 * opens one context that way on purpose). stale-dmabuf and dedicated need
 * the p2p_mmap_test module (its importer stands in for a peer device that
 * holds the page's dma-buf).
 *
 * Prints "ok" lines; exits non-zero with "FAIL: ..." on the first failure.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "rxe_db.h"
#include "p2p_test_tap.h"

static const char *dev_name;

static void ok(const char *what)
{
	printf("ok - %s\n", what);
	fflush(stdout);
}

static unsigned long long hw_counter(const char *name)
{
	return db_counter(dev_name, name);
}

static void open_dev(struct vt_dev *d)
{
	vt_dev_open(d, dev_name);
	if (d->gid_index < 0)
		die("no IPv4 GID on %s", dev_name);
}

/*
 * One RDMA WRITE through ibv_post_send(), which rings (and kicks when the
 * slot asks), to completion, checking that the data arrived.
 */
static void write_and_check(struct db_qp *q, uint32_t seq)
{
	struct vt_dev *d = q->v.d;
	size_t src = 4096 + (size_t)q->qpn % 64 * 64, dst = 65536 + (size_t)q->qpn % 64 * 64;

	memcpy(d->buf + src, &seq, sizeof(seq));
	db_post_write(q, seq, src, dst, sizeof(seq));
	if (vt_wait_cq(q->v.cq, 1, 10000, NULL) != 1)
		die("qp %u: no completion for ring %u (slot flags %#x)", q->qpn, seq,
		    q->slot ? db_slot_flags(q) : 0);
	if (memcmp(d->buf + dst, &seq, sizeof(seq)))
		die("qp %u: data of ring %u did not arrive", q->qpn, seq);
}

/* A peer's post: the builder writes the WQE, a store rings, nobody kicks. */
static void peer_write_and_check(struct db_qp *q, uint32_t seq,
				 void (*ring)(struct db_qp *q))
{
	struct vt_dev *d = q->v.d;

	memcpy(d->buf + 8192, &seq, 4);
	db_build_write(q, seq, 8192, 16384, 4);
	ring(q);
	if (vt_wait_cq(q->v.cq, 1, 10000, NULL) != 1)
		die("qp %u: peer ring %u was not noticed", q->qpn, seq);
	if (memcmp(d->buf + 16384, &seq, 4))
		die("qp %u: data of peer ring %u did not arrive", q->qpn, seq);
}

static void t_basic(int mode_off)
{
	struct vt_dev d, ds;
	struct db_qp q, old;
	struct ibv_cq *cq;
	unsigned long long k0, kicks;
	size_t sq_len;
	uint32_t i;
	int err, fd;

	/*
	 * A context opened with RXE_DOORBELL=syscall: its QPs ask for no
	 * slot (no driver data in the create), and every post kicks.
	 */
	if (setenv("RXE_DOORBELL", "syscall", 1))
		die("setenv");
	open_dev(&ds);
	unsetenv("RXE_DOORBELL");
	cq = ibv_create_cq(ds.ctx, 64, NULL, NULL, 0);
	if (!cq)
		die("create cq");
	err = db_qp_try_create(&ds, &old, cq, DBQ_PLAIN, 16);
	if (err)
		die("create a qp without a doorbell: %s", strerror(err));
	if (old.slot)
		die("RXE_DOORBELL=syscall: the QP got a doorbell slot");
	db_qp_connect(&old);
	k0 = hw_counter("db_syscall_kicks");
	for (i = 0; i < 10; i++)
		write_and_check(&old, 100 + i);
	if (hw_counter("db_syscall_kicks") != k0)
		die("posts to a QP without a doorbell counted as doorbell kicks");
	db_qp_destroy(&old);
	ibv_destroy_cq(cq);
	vt_dev_close(&ds);
	ok("a QP created without a doorbell slot sends with system call kicks");

	open_dev(&d);
	cq = ibv_create_cq(d.ctx, 64, NULL, NULL, 0);
	if (!cq)
		die("create cq");
	/* forged: the provider always asks with the full response */
	err = forge_create_qp(&d, cq, RXE_CREATE_QP_DOORBELL,
			      offsetof(struct rxe_create_qp_resp, db_offset));
	if (err != EINVAL)
		die("doorbell with a short response: got %s, want EINVAL", strerror(err));
	/* forged: a flag no provider knows */
	err = forge_create_qp(&d, cq, 1 << 7, sizeof(struct rxe_create_qp_resp));
	if (err != EOPNOTSUPP)
		die("unknown create flag: got %s, want EOPNOTSUPP", strerror(err));
	ok("malformed doorbell requests are refused");

	db_qp_create(&d, &q, cq, DBQ_PLAIN);
	/* one offset space, the context's mmap database: no range apart */
	if (vt_mapping(q.sq.buf, &sq_len) >= 0x80000000ULL * db_page_size())
		die("queue offset %#llx: rxe's own offset range is back",
		    (unsigned long long)vt_mmap_offset(q.sq.buf));
	if (!(db_slot_flags(&q) & RXE_DB_NEED_WAKEUP))
		die("a new slot must ask for a kick");
	if (le32toh(q.slot->sq_prod) != RXE_DB_IDLE)
		die("a new slot must be idle");
	if (q.sq.flags & (IBV_PEER_SQ_RING_BY_PEER | IBV_PEER_SQ_DEDICATED_DB |
			  IBV_PEER_SQ_STAGED))
		die("a plain QP reports peer flags %#x", q.sq.flags);
	printf("# doorbell page offset %#llx slot %u\n",
	       (unsigned long long)q.offset, q.index);
	db_qp_connect(&q);
	k0 = hw_counter("db_syscall_kicks");
	for (i = 0; i < 1000; i++)
		write_and_check(&q, i);
	kicks = hw_counter("db_syscall_kicks") - k0;
	printf("# 1000 rings, %llu system call kicks\n", kicks);
	if (mode_off && kicks != 1000)
		die("db_mode=off: %llu kicks for 1000 rings", kicks);
	if (!mode_off && kicks >= 1000)
		die("every ring needed a kick: the engine never polled");
	ok("ibv_post_send() rings through the doorbell page; WQEs complete");

	/* forged: the provider maps exactly one page */
	if (forge_map_page(d.ctx, q.offset, 2 * db_page_size(), MAP_SHARED))
		die("mapping two pages at the doorbell offset succeeded");
	ok("a doorbell mapping cannot be larger than the page");

	/*
	 * forged: the library exports the page of a peer QP only; the kernel
	 * exports any doorbell page of the context, its p2p ops are the page's
	 */
	fd = ibv_cmd_export_dmabuf_fd(d.ctx, q.offset);
	if (fd < 0)
		die("export the doorbell page as a dma-buf: %s", strerror(errno));
	if (lseek(fd, 0, SEEK_END) != db_page_size())
		die("the dma-buf is not one page");
	close(fd);
	ok("the doorbell page exports as a dma-buf");

	db_qp_destroy(&q);
	ibv_destroy_cq(cq);
	vt_dev_close(&d);
}

struct thr {
	pthread_t t;
	int id, nqp, n;
	struct vt_dev *d;
	unsigned long done;
};

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	struct db_qp *q = calloc(t->nqp, sizeof(*q));
	struct ibv_cq *cq = ibv_create_cq(t->d->ctx, 4 * t->nqp + 16, NULL, NULL, 0);
	unsigned int seed = t->id;
	int i, j;

	if (!cq || !q)
		die("thread cq");
	for (j = 0; j < t->nqp; j++) {
		db_qp_create(t->d, &q[j], cq, DBQ_PLAIN);
		db_qp_connect(&q[j]);
	}
	for (i = 0; i < t->n; i++) {
		/* post (and so ring) one WQE on each QP, then collect */
		for (j = 0; j < t->nqp; j++)
			db_post_write(&q[j], i, 4096 + 64 * t->id, 65536 + 64 * t->id, 8);
		if (vt_wait_cq(cq, t->nqp, 20000, NULL) != t->nqp) {
			for (j = 0; j < t->nqp; j++)
				fprintf(stderr, "# qp %u prod %u cons %u slot %#x flags %#x\n",
					q[j].qpn, db_prod(&q[j]),
					*(const volatile uint32_t *)q[j].sq.cons_index,
					le32toh(q[j].slot->sq_prod), db_slot_flags(&q[j]));
			die("thread %d round %d: a ring was lost", t->id, i);
		}
		t->done += t->nqp;
		/* now and then stay away longer than the idle timeout */
		if (rand_r(&seed) % 64 == 0)
			usleep(rand_r(&seed) % 3000);
	}
	for (j = 0; j < t->nqp; j++)
		if (db_qp_destroy(&q[j]))
			die("destroy qp");
	ibv_destroy_cq(cq);
	free(q);
	return NULL;
}

static void t_threads(int nthr, int nqp, int n)
{
	struct thr *t = calloc(nthr, sizeof(*t));
	unsigned long done = 0;
	unsigned long long k0;
	struct vt_dev d;
	int i;

	open_dev(&d);
	k0 = hw_counter("db_syscall_kicks");
	for (i = 0; i < nthr; i++) {
		t[i] = (struct thr){ .id = i, .nqp = nqp, .n = n, .d = &d };
		pthread_create(&t[i].t, NULL, thr_main, &t[i]);
	}
	for (i = 0; i < nthr; i++) {
		pthread_join(t[i].t, NULL);
		done += t[i].done;
	}
	printf("# %lu completions of %lu rings, %llu system call kicks\n",
	       done, (unsigned long)nthr * nqp * n, hw_counter("db_syscall_kicks") - k0);
	if (done != (unsigned long)nthr * nqp * n)
		die("completions missing");
	ok("rings from many threads on many QPs are never lost");
	free(t);
	vt_dev_close(&d);
}

static void t_wakeup(int idle_us)
{
	struct vt_dev d;
	struct db_qp q, p;
	struct ibv_cq *cq;
	unsigned long long k;
	uint32_t flags;
	int i;

	open_dev(&d);
	cq = ibv_create_cq(d.ctx, 64, NULL, NULL, 0);
	db_qp_create(&d, &q, cq, DBQ_PLAIN);
	db_qp_connect(&q);

	/*
	 * The slot stays armed for db_idle_us after the kick: look at it as
	 * soon as ibv_post_send() (and its kick) returned, not after the
	 * completion, which a busy host can delay beyond that. A host that
	 * stops the guest for longer lets the engine go to sleep in between
	 * (db_engine_sleeps counts it), which disarms the slot again: then
	 * the look proves nothing, and the ring is tried again.
	 */
	for (i = 0;; i++) {
		unsigned long long sleeps = hw_counter("db_engine_sleeps");

		k = hw_counter("db_syscall_kicks");
		db_post_write(&q, 1 + i, 4096, 65536, 4);
		flags = db_slot_flags(&q);
		if (vt_wait_cq(cq, 1, 10000, NULL) != 1)
			die("no completion of the first ring");
		if (hw_counter("db_syscall_kicks") != k + 1)
			die("first ring: %llu kicks, want 1",
			    hw_counter("db_syscall_kicks") - k);
		if (!(flags & RXE_DB_NEED_WAKEUP))
			break;
		if (hw_counter("db_engine_sleeps") == sleeps)
			die("a kick must arm the slot");
		if (i == 9)
			die("the engine slept between every kick and the look at the slot (10 tries)");
		printf("# the engine slept before the look at the slot: again\n");
		/* asleep again, so that the next ring kicks */
		usleep(idle_us * 5 + 200000);
	}
	ok("the first ring kicks and arms the slot");

	/* rings closer together than the idle timeout need no kick */
	k = hw_counter("db_syscall_kicks");
	for (i = 0; i < 20; i++)
		write_and_check(&q, 2 + i);
	printf("# 20 quick rings, %llu kicks\n", hw_counter("db_syscall_kicks") - k);

	/* after the idle timeout the engine lets go and says so */
	usleep(idle_us * 5 + 200000);
	if (!(db_slot_flags(&q) & RXE_DB_NEED_WAKEUP))
		die("slot still armed %d us after the last ring", idle_us * 5 + 200000);
	ok("the engine sets need-wakeup after the idle timeout");
	k = hw_counter("db_syscall_kicks");
	write_and_check(&q, 100);
	if (hw_counter("db_syscall_kicks") != k + 1)
		die("ring after idle did not kick");
	ok("the need-wakeup fallback kick works");

	/* a peer slot: rung by a "device" that never kicks */
	db_qp_create(&d, &p, cq, IBV_PEER_QP_RING_BY_PEER);
	if (!(p.sq.flags & IBV_PEER_SQ_RING_BY_PEER))
		die("a peer QP does not say IBV_PEER_SQ_RING_BY_PEER");
	db_qp_connect(&p);
	k = hw_counter("db_syscall_kicks");
	for (i = 0; i < 5; i++) {
		usleep(idle_us * 5 + 100000);
		peer_write_and_check(&p, 200 + i, db_peer_ring);
	}
	if (hw_counter("db_syscall_kicks") != k)
		die("peer rings kicked");
	ok("peer slots are scanned while the engine sleeps");
	db_qp_destroy(&p);
	db_qp_destroy(&q);
	ibv_destroy_cq(cq);
	vt_dev_close(&d);
}

/* Does q or the QP at its other end own slot i of page? */
static int owns_slot(const struct db_qp *q, const void *page, uint32_t i)
{
	return q->page == page && (q->index == i || q->peer_index == (int)i);
}

static void t_garbage(void)
{
	struct vt_dev d;
	struct db_qp a, b;
	struct ibv_cq *cqa, *cqb;
	struct ibv_wc wc;
	uint32_t i, mask;
	double end;
	int err;

	open_dev(&d);
	cqa = ibv_create_cq(d.ctx, 64, NULL, NULL, 0);
	cqb = ibv_create_cq(d.ctx, 64, NULL, NULL, 0);
	db_qp_create(&d, &a, cqa, DBQ_PLAIN);
	db_qp_create(&d, &b, cqb, DBQ_PLAIN);
	db_qp_connect(&a);
	db_qp_connect(&b);
	write_and_check(&a, 1);
	write_and_check(&b, 1);
	mask = b.sq.wqe_cnt - 1;

	/* forged: spurious, in range but not what the queue says; harmless */
	forge_ring(b.page, b.index, (db_prod(&b) + 3) & mask);
	err = forge_kick(&b);
	if (err)
		die("kick: %s", strerror(err));
	usleep(100000);
	write_and_check(&b, 2);
	ok("a spurious ring is harmless");

	/* forged: rings in slots nobody owns, and the kernel-owned flags word */
	for (i = 0; i < db_page_size() / sizeof(struct rxe_db_slot); i++) {
		volatile struct rxe_db_slot *s = (struct rxe_db_slot *)b.page + i;

		if (owns_slot(&a, b.page, i) || owns_slot(&b, b.page, i))
			continue;
		forge_ring(b.page, i, 0xdeadbeef);
		s->flags = htole32(0xffffffff);
	}
	usleep(100000);
	write_and_check(&b, 3);
	write_and_check(&a, 3);
	ok("rings in unused slots do nothing");

	/* forged: invalid, beyond the queue; moves a (only) to the error state */
	forge_ring(a.page, a.index, 0xdeadbeef);
	err = forge_kick(&a);
	if (err)
		die("kick: %s", strerror(err));
	end = vt_now_us() + 10e6;
	while (!(db_slot_flags(&a) & RXE_DB_QP_ERROR))
		if (vt_now_us() > end)
			die("invalid ring: no RXE_DB_QP_ERROR");
	db_post_write(&a, 77, 4096, 65536, 4);
	if (vt_wait_cq(cqa, 1, 10000, &wc) != 1)
		die("invalid ring: WQE after the error was not flushed");
	if (wc.status == IBV_WC_SUCCESS)
		die("invalid ring: QP still sends");
	printf("# after the invalid ring: %s\n", ibv_wc_status_str(wc.status));
	ok("an invalid ring moves the QP to the error state");
	for (i = 0; i < 20; i++)
		write_and_check(&b, 10 + i);
	if (db_slot_flags(&b) & RXE_DB_QP_ERROR)
		die("the other QP's slot got RXE_DB_QP_ERROR");
	ok("other QPs carry on");

	/* the flag lasts as long as the error state, no longer */
	db_qp_reset_connect(&a);
	if (db_slot_flags(&a) & RXE_DB_QP_ERROR)
		die("RXE_DB_QP_ERROR is still set after the reset");
	for (i = 0; i < 10; i++)
		write_and_check(&a, 100 + i);
	ok("a reset clears RXE_DB_QP_ERROR and the QP works again");

	db_qp_destroy(&a);
	db_qp_destroy(&b);
	ibv_destroy_cq(cqa);
	ibv_destroy_cq(cqb);
	vt_dev_close(&d);
}

static void t_isolation(void)
{
	struct vt_dev d;
	struct db_qp q;
	struct ibv_cq *cq;
	int status;
	pid_t pid;

	open_dev(&d);
	cq = ibv_create_cq(d.ctx, 64, NULL, NULL, 0);
	db_qp_create(&d, &q, cq, DBQ_PLAIN);
	db_qp_connect(&q);
	write_and_check(&q, 1);

	pid = fork();
	if (pid == 0) {
		/* another process: its own uverbs file and context */
		struct vt_dev d2;
		struct db_qp q2;
		struct ibv_cq *cq2;
		unsigned int i;

		open_dev(&d2);
		/* forged: the parent's page offset, in another context */
		if (forge_map_page(d2.ctx, q.offset, db_page_size(), MAP_SHARED))
			die("a second process mapped the first one's doorbell page");
		if (ibv_cmd_export_dmabuf_fd(d2.ctx, q.offset) >= 0)
			die("a second process exported the first one's doorbell page");
		cq2 = ibv_create_cq(d2.ctx, 64, NULL, NULL, 0);
		db_qp_create(&d2, &q2, cq2, DBQ_PLAIN);
		/* forged: garbage in every slot of its own page */
		for (i = 0; i < db_page_size() / sizeof(struct rxe_db_slot); i++)
			forge_ring(q2.page, i, 0xdeadbeef);
		usleep(200000);
		exit(0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		die("second process failed");
	if (db_slot_flags(&q) & RXE_DB_QP_ERROR)
		die("the second process' rings reached our QP");
	write_and_check(&q, 2);
	ok("a second process can neither map nor ring our slots");
	db_qp_destroy(&q);
	ibv_destroy_cq(cq);
	vt_dev_close(&d);
}

static volatile int stop_ringing;

struct ringer_arg {
	void *page;		/* a mapping of our own, past the QP */
	uint32_t index, mask;
};

/* forged: in-range values, mostly spurious ones, as fast as it can */
static void *ringer(void *arg)
{
	struct ringer_arg *r = arg;
	uint32_t v = 0;

	while (!stop_ringing)
		forge_ring(r->page, r->index, v++ & r->mask);
	return NULL;
}

/* forged: a stale ringer's own mapping of q's page, which outlives q */
static struct ringer_arg stale_ringer_of(struct db_qp *q)
{
	struct ringer_arg r = {
		.page = forge_map_page(q->v.qp->context, q->offset,
				       db_page_size(), MAP_SHARED),
		.index = q->index,
		.mask = q->sq.wqe_cnt - 1,
	};

	if (!r.page)
		die("map the doorbell page again: %s", strerror(errno));
	return r;
}

static void t_destroy_ring(void)
{
	struct ringer_arg r;
	struct vt_dev d;
	struct db_qp q, q2;
	struct ibv_cq *cq;
	pthread_t t;
	int round, err;

	open_dev(&d);
	cq = ibv_create_cq(d.ctx, 256, NULL, NULL, 0);
	for (round = 0; round < 20; round++) {
		db_qp_create(&d, &q, cq, round & 1 ? IBV_PEER_QP_RING_BY_PEER : DBQ_PLAIN);
		db_qp_connect(&q);
		write_and_check(&q, round);
		r = stale_ringer_of(&q);
		stop_ringing = 0;
		pthread_create(&t, NULL, ringer, &r);
		usleep(20000);
		/* forged: a kick for the ringer's values */
		err = forge_kick(&q);
		if (err)
			die("kick: %s", strerror(err));
		if (db_qp_destroy(&q))
			die("destroy with rings in flight");
		usleep(20000);
		stop_ringing = 1;
		pthread_join(t, NULL);
		/* the slot is retired: a new QP gets another, and works */
		db_qp_create(&d, &q2, cq, DBQ_PLAIN);
		db_qp_connect(&q2);
		write_and_check(&q2, 1000 + round);
		db_qp_destroy(&q2);
		munmap(r.page, db_page_size());
		while (ibv_poll_cq(cq, 1, &(struct ibv_wc){}) > 0)
			;
	}
	ok("QP destroy with rings in flight; the freed slot is harmless");
	ibv_destroy_cq(cq);
	vt_dev_close(&d);
}

static int same_slot(const struct db_qp *a, const struct db_qp *b)
{
	return a->offset == b->offset && a->index == b->index;
}

/* A peer ring through the test module's importer of an exported page. */
static void peer_write(uint32_t index, uint32_t val)
{
	int err = p2p_test_ctl("write %d %zu %x", IMP_FOREIGN,
			       index * sizeof(struct rxe_db_slot), val);

	if (err)
		die("peer write of %#x to slot %u: %s", val, index, strerror(err));
}

/* The ring of a peer device that imported the page: the test module. */
static void module_ring(struct db_qp *q)
{
	peer_write(q->index, db_prod(q));
}

/* Wait until a slot that nobody consumes holds a stale ringer's value. */
static uint32_t wait_stale_value(void *page, uint32_t index)
{
	double end = vt_now_us() + 10e6;
	uint32_t v;

	while ((v = db_slot_value(page, index)) == RXE_DB_IDLE)
		if (vt_now_us() > end)
			die("the stale ringer never rang slot %u", index);
		else
			usleep(1000);
	return v;
}

/* The doorbell's dma-buf, through the verb; dies on failure. */
static struct ibv_peer_db_dmabuf export_db(struct db_qp *q, uint32_t flags)
{
	struct ibv_peer_db_dmabuf x;
	int err = ibv_peer_export_db(q->v.qp, flags, &x, sizeof(x));

	if (err)
		die("ibv_peer_export_db of qp %u: %s", q->qpn, strerror(err));
	if (x.length != (uint64_t)db_page_size() ||
	    x.offset != q->index * sizeof(struct rxe_db_slot) +
			offsetof(struct rxe_db_slot, sq_prod))
		die("qp %u: export of %llu bytes, doorbell at %llu", q->qpn,
		    (unsigned long long)x.length, (unsigned long long)x.offset);
	return x;
}

/*
 * Queue buffers are mmap entries of the context: they map (again) while
 * they exist, shared and whole only; resized CQs and SRQs get new ones.
 */
static void t_queues(void)
{
	struct ibv_srq_init_attr sia = { .attr = { .max_wr = 16, .max_sge = 1 } };
	struct ibv_send_wr wr[10], *bad_wr;
	struct ibv_sge wsge[10];
	struct ibv_srq_attr sa = {};
	struct ibv_recv_wr rwr = {}, *bad;
	struct ibv_sge sge;
	struct rxe_queue_buf *p;
	struct ibv_wc wc;
	struct ibv_srq *srq;
	struct ibv_cq *cq;
	struct vt_dev d;
	struct db_qp q;
	uint64_t sq_off;
	size_t sq_len;
	uint8_t *ahead;
	int seen[10] = {}, i, n;

	open_dev(&d);
	cq = ibv_create_cq(d.ctx, 16, NULL, NULL, 0);
	if (!cq)
		die("create cq");
	db_qp_create(&d, &q, cq, DBQ_PLAIN);
	db_qp_connect(&q);

	/*
	 * forged: mappings of the send queue besides the provider's, which
	 * starts at the queue's header, a page before its first WQE or less
	 */
	sq_off = vt_mapping(q.sq.buf, &sq_len);
	if (((uintptr_t)q.sq.buf & (db_page_size() - 1)) !=
	    offsetof(struct rxe_queue_buf, data))
		die("the send queue's WQEs are not right after its header");
	p = forge_map_page(d.ctx, sq_off, sq_len, MAP_SHARED);
	if (!p)
		die("second mapping of the send queue: %s", strerror(errno));
	/* a WQE slot ahead of the producer index: nobody reads it */
	i = ((db_prod(&q) + 2) & (q.sq.wqe_cnt - 1)) * q.sq.wqe_size;
	p->data[i] = 0x5a;
	ahead = (uint8_t *)q.sq.buf + i;
	if (p->index_mask != q.sq.wqe_cnt - 1 || *(volatile uint8_t *)ahead != 0x5a)
		die("the second mapping is not the same queue");
	munmap(p, sq_len);
	if (forge_map_page(d.ctx, sq_off, sq_len + db_page_size(), MAP_SHARED))
		die("a mapping larger than the send queue succeeded");
	if (forge_map_page(d.ctx, sq_off, sq_len, MAP_PRIVATE))
		die("a private mapping of the send queue succeeded");
	ok("a queue maps again while it exists, shared and whole only");

	/* completions on their way while the CQ moves to a new buffer */
	for (i = 0; i < 10; i++) {
		vt_write_wr(&q.v, &wr[i], &wsge[i], i, 4096 + 64 * i, 65536 + 64 * i, 8);
		wr[i].next = i < 9 ? &wr[i + 1] : NULL;
	}
	/* one post list, one ring */
	if (ibv_post_send(q.v.qp, wr, &bad_wr))
		die("post a list of 10");
	if (ibv_resize_cq(cq, 256))
		die("resize cq: %s", strerror(errno));
	for (n = 0; n < 10; n++) {
		if (vt_wait_cq(cq, 1, 10000, &wc) != 1)
			die("resized cq: %d of 10 completions", n);
		if (wc.status != IBV_WC_SUCCESS || wc.wr_id >= 10 || seen[wc.wr_id]++)
			die("resized cq: completion wr_id %llu status %s",
			    (unsigned long long)wc.wr_id, ibv_wc_status_str(wc.status));
	}
	for (i = 0; i < 100; i++)
		write_and_check(&q, 1000 + i);
	if (ibv_resize_cq(cq, 32))
		die("shrink cq: %s", strerror(errno));
	for (i = 0; i < 20; i++)
		write_and_check(&q, 2000 + i);
	ok("a resized CQ keeps its completions and keeps working");

	srq = ibv_create_srq(d.pd, &sia);
	if (!srq)
		die("create srq: %s", strerror(errno));
	sge = (struct ibv_sge){ .addr = (uintptr_t)d.buf, .length = 64, .lkey = d.mr->lkey };
	rwr.sg_list = &sge;
	rwr.num_sge = 1;
	for (i = 0; i < 8; i++)
		if (ibv_post_srq_recv(srq, &rwr, &bad))
			die("post srq recv %d", i);
	sa.max_wr = 64;
	if (ibv_modify_srq(srq, &sa, IBV_SRQ_MAX_WR))
		die("resize srq: %s", strerror(errno));
	/* more than the old queue holds: only the new buffer takes them */
	for (i = 0; i < 40; i++)
		if (ibv_post_srq_recv(srq, &rwr, &bad))
			die("post srq recv %d after the resize", 8 + i);
	if (ibv_query_srq(srq, &sa) || sa.max_wr < 64)
		die("query srq after the resize: max_wr %u", sa.max_wr);
	if (ibv_destroy_srq(srq))
		die("destroy srq");
	ok("a resized SRQ takes work requests in its new buffer");

	db_qp_destroy(&q);
	/* forged: the offset of a queue that is gone */
	if (forge_map_page(d.ctx, sq_off, sq_len, MAP_SHARED))
		die("the send queue of a destroyed QP can still be mapped");
	ok("a destroyed QP's queues cannot be mapped");
	ibv_destroy_cq(cq);
	vt_dev_close(&d);
}

/*
 * A forked child that inherited the page keeps ringing the slot of a QP
 * its parent destroyed, with the old producer index and with garbage. No
 * other QP may notice: the slot is never handed out again.
 */
static void t_stale_fork(void)
{
	struct db_qp a, b, p;
	unsigned long long inv0;
	struct ibv_cq *cq;
	struct vt_dev d;
	uint32_t aprod;
	void *apage;
	int i, status;
	pid_t pid;

	open_dev(&d);
	cq = ibv_create_cq(d.ctx, 64, NULL, NULL, 0);
	db_qp_create(&d, &a, cq, DBQ_PLAIN);
	db_qp_connect(&a);
	for (i = 0; i < 3; i++)
		write_and_check(&a, i);
	aprod = db_prod(&a);
	apage = a.page;
	inv0 = hw_counter("db_invalid_rings");

	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		/* forged: the child, a stale ringer with the inherited mapping */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (i = 0;; i++) {
			forge_ring(apage, a.index, i & 1 ? 0xdeadbeef : aprod);
			usleep(20);
		}
	}

	/*
	 * The parent's mapping goes with its QPs (the provider unmaps the
	 * page with the last of them); the child keeps its own. The peer QP
	 * comes first: had it the old slot, the engine's scan would judge
	 * every stale ring in it.
	 */
	if (db_qp_destroy(&a))
		die("destroy qp");
	db_qp_create(&d, &p, cq, IBV_PEER_QP_RING_BY_PEER);
	db_qp_create(&d, &b, cq, DBQ_PLAIN);
	printf("# destroyed qp had slot %u at %#llx; new qps: slot %u at %#llx, slot %u at %#llx\n",
	       a.index, (unsigned long long)a.offset, b.index,
	       (unsigned long long)b.offset, p.index, (unsigned long long)p.offset);
	db_qp_connect(&b);
	db_qp_connect(&p);
	for (i = 0; i < 100; i++)
		write_and_check(&b, 100 + i);
	for (i = 0; i < 3; i++)
		peer_write_and_check(&p, 300 + i, db_peer_ring);
	if ((db_slot_flags(&b) | db_slot_flags(&p)) & RXE_DB_QP_ERROR)
		die("a stale ring moved a new QP to the error state");
	if (hw_counter("db_invalid_rings") != inv0)
		die("the child's garbage was judged as a ring");
	if (same_slot(&a, &b) || same_slot(&a, &p))
		die("the slot of a destroyed QP was handed out again");
	if (b.offset == a.offset) {
		uint32_t v = wait_stale_value(b.page, a.index);

		if (v != aprod && v != 0xdeadbeef)
			die("the old slot holds %#x, not the child's ring", v);
		printf("# the old slot holds the child's ring %#x, unconsumed\n", v);
	}
	if (kill(pid, SIGKILL) || waitpid(pid, &status, 0) != pid)
		die("kill the child");
	ok("a forked child ringing a destroyed QP's slot reaches no other QP");
	db_qp_destroy(&b);
	db_qp_destroy(&p);
	ibv_destroy_cq(cq);
	vt_dev_close(&d);
}

/*
 * A peer holding the page's dma-buf rings the slot of a destroyed QP while
 * the page lives on for other QPs: nothing happens to them.
 */
static void t_stale_dmabuf(void)
{
	struct ibv_peer_db_dmabuf x;
	struct db_qp k, a, b, p;
	unsigned long long inv0;
	struct ibv_cq *cq;
	struct vt_dev d;
	uint32_t aprod, last;
	int i, err;

	open_dev(&d);
	cq = ibv_create_cq(d.ctx, 64, NULL, NULL, 0);
	db_qp_create(&d, &k, cq, IBV_PEER_QP_RING_BY_PEER);
	db_qp_create(&d, &a, cq, DBQ_PLAIN);
	if (a.offset != k.offset)
		die("two QPs of a context did not share a page");
	db_qp_connect(&k);
	db_qp_connect(&a);
	for (i = 0; i < 3; i++) {
		write_and_check(&k, i);
		write_and_check(&a, i);
	}
	aprod = db_prod(&a);

	/* k's doorbell; the dma-buf is the whole shared page */
	x = export_db(&k, 0);
	if (x.flags & IBV_PEER_DMABUF_DEDICATED)
		die("a shared page's export says it is dedicated");
	err = p2p_test_ctl("attach %d", x.fd);
	if (err)
		die("the peer could not import the page: %s", strerror(err));
	inv0 = hw_counter("db_invalid_rings");

	/* the peer QP first, as in stale-fork */
	if (db_qp_destroy(&a))
		die("destroy qp");
	db_qp_create(&d, &p, cq, IBV_PEER_QP_RING_BY_PEER);
	db_qp_create(&d, &b, cq, DBQ_PLAIN);
	db_qp_connect(&b);
	db_qp_connect(&p);

	/*
	 * The peer, unaware, rings the old slot: the old index, one that
	 * would be spurious for p, then garbage, which stays there.
	 */
	peer_write(a.index, aprod);
	peer_write(a.index, db_prod(&p) + 1);
	last = 0xdeadbeef;
	peer_write(a.index, last);
	for (i = 0; i < 50; i++)
		write_and_check(&b, 100 + i);
	for (i = 0; i < 3; i++)
		peer_write_and_check(&p, 300 + i, db_peer_ring);
	write_and_check(&k, 100);
	if ((db_slot_flags(&b) | db_slot_flags(&p) | db_slot_flags(&k)) &
	    RXE_DB_QP_ERROR)
		die("a stale peer ring moved a QP to the error state");
	if (hw_counter("db_invalid_rings") != inv0)
		die("the peer's garbage was judged as a ring");
	if (same_slot(&a, &b) || same_slot(&a, &p))
		die("the slot of a destroyed QP was handed out again");
	if (db_slot_value(k.page, a.index) != last)
		die("the old slot was consumed: %#x", db_slot_value(k.page, a.index));
	ok("a dma-buf holder ringing a destroyed QP's slot reaches no other QP");

	/* the same export still rings the live peer QP */
	if (p.offset != k.offset)
		die("the new peer QP is not in the exported page");
	for (i = 0; i < 3; i++)
		peer_write_and_check(&p, 400 + i, module_ring);
	ok("the export still rings the page's live QPs");

	db_qp_destroy(&k);
	db_qp_destroy(&b);
	db_qp_destroy(&p);
	ibv_destroy_cq(cq);
	close(x.fd);
	/* the page had slots left to give: it goes with the context */
	vt_dev_close(&d);
	err = p2p_test_ctl("revoked %d rxe-stale-context-close", IMP_FOREIGN);
	if (err)
		die("closing the context did not revoke the peer: %s", strerror(err));
	ok("closing the context revokes the peer's import");
}

/*
 * IBV_PEER_QP_DEDICATED_DB: the QP's slot is alone in its page; an export
 * of that page rings that QP and no other, and goes with the QP.
 */
static void t_dedicated(void)
{
	long pagesize = db_page_size();
	struct ibv_peer_db_dmabuf x_db;
	struct db_qp s, s2, x, y;
	unsigned long long inv0;
	struct ibv_cq *cq;
	struct vt_dev d;
	uint32_t i;
	int fd, err;

	open_dev(&d);
	cq = ibv_create_cq(d.ctx, 64, NULL, NULL, 0);
	db_qp_create(&d, &s, cq, DBQ_PLAIN);
	db_qp_create(&d, &x, cq, IBV_PEER_QP_DEDICATED_DB | IBV_PEER_QP_RING_BY_PEER);
	/* a dedicated doorbell implies a peer rings it */
	db_qp_create(&d, &y, cq, IBV_PEER_QP_DEDICATED_DB);
	db_qp_create(&d, &s2, cq, DBQ_PLAIN);
	if (x.sq.flags != (IBV_PEER_SQ_RING_BY_PEER | IBV_PEER_SQ_DEDICATED_DB) ||
	    y.sq.flags != (IBV_PEER_SQ_RING_BY_PEER | IBV_PEER_SQ_DEDICATED_DB))
		die("send queue flags %#x and %#x", x.sq.flags, y.sq.flags);
	if (x.index || y.index || x.offset == s.offset ||
	    y.offset == s.offset || x.offset == y.offset)
		die("dedicated slots %u at %#llx and %u at %#llx, shared page at %#llx",
		    x.index, (unsigned long long)x.offset, y.index,
		    (unsigned long long)y.offset, (unsigned long long)s.offset);
	if (s2.offset != s.offset)
		die("a dedicated page took the shared page's place");
	ok("dedicated slots sit alone in pages of their own");
	db_qp_connect(&s);
	db_qp_connect(&s2);
	db_qp_connect(&x);
	db_qp_connect(&y);
	if (x.peer_index >= 0 || y.peer_index >= 0)
		die("another QP got a slot in a dedicated page");
	write_and_check(&x, 1);
	write_and_check(&y, 1);
	write_and_check(&s, 1);

	x_db = export_db(&x, IBV_PEER_EXPORT_EXCLUSIVE);
	if (!(x_db.flags & IBV_PEER_DMABUF_DEDICATED) ||
	    lseek(x_db.fd, 0, SEEK_END) != pagesize)
		die("the dedicated page's export: flags %#x", x_db.flags);
	err = p2p_test_ctl("attach %d", x_db.fd);
	if (err)
		die("the peer could not import the dedicated page: %s", strerror(err));
	for (i = 0; i < 3; i++)
		peer_write_and_check(&x, 10 + i, module_ring);
	ok("the export of a dedicated page rings its QP");

	inv0 = hw_counter("db_invalid_rings");
	for (i = 1; i < pagesize / sizeof(struct rxe_db_slot); i++)
		peer_write(i, i & 1 ? 0xdeadbeef : 1);
	for (i = 0; i < 10; i++) {
		write_and_check(&s, 100 + i);
		write_and_check(&s2, 100 + i);
		write_and_check(&y, 100 + i);
	}
	if ((db_slot_flags(&s) | db_slot_flags(&s2) | db_slot_flags(&y)) &
	    RXE_DB_QP_ERROR)
		die("the dedicated page's export reached another QP");
	for (i = 1; i < pagesize / sizeof(struct rxe_db_slot); i++)
		if (db_slot_value(x.page, i) != (i & 1 ? 0xdeadbeef : 1))
			die("slot %u of the dedicated page was consumed", i);
	if (hw_counter("db_invalid_rings") != inv0)
		die("a ring in the dedicated page's other slots was judged");
	peer_write_and_check(&x, 20, module_ring);
	ok("the export of a dedicated page rings no other QP");

	/* the page goes with its QP: revoked, no longer mapped or exported */
	if (db_qp_destroy(&x))
		die("destroy the dedicated qp");
	err = p2p_test_ctl("revoked %d rxe-dedicated-qp-destroy", IMP_FOREIGN);
	if (err)
		die("destroying the QP did not revoke its page's export: %s", strerror(err));
	close(x_db.fd);
	/* forged: the offset of a page whose QP is gone */
	if (forge_map_page(d.ctx, x.offset, pagesize, MAP_SHARED))
		die("the dedicated page of a destroyed QP can be mapped");
	fd = ibv_cmd_export_dmabuf_fd(d.ctx, x.offset);
	if (fd >= 0)
		die("the dedicated page of a destroyed QP can be exported");
	for (i = 0; i < 10; i++) {
		write_and_check(&s, 200 + i);
		write_and_check(&y, 200 + i);
	}
	ok("a dedicated page goes with its QP; the others carry on");

	db_qp_destroy(&s);
	db_qp_destroy(&s2);
	db_qp_destroy(&y);
	ibv_destroy_cq(cq);
	vt_dev_close(&d);
}

/*
 * QP churn: the provider unmaps a page with its last QP, so retired pages
 * are freed, their mmap offsets come back and the offsets in use stay few.
 */
static void t_churn(int n)
{
	struct ibv_peer_db_dmabuf x;
	unsigned long long offs[32];
	int i, j, nr_offs = 0, pages = 0;
	struct ibv_cq *cq;
	struct vt_dev d;
	struct db_qp q;

	open_dev(&d);
	cq = ibv_create_cq(d.ctx, 64, NULL, NULL, 0);
	for (i = 0; i < n; i++) {
		db_qp_create(&d, &q, cq, i & 1 ? IBV_PEER_QP_DEDICATED_DB : DBQ_PLAIN);
		if (i & 1 || !q.index)
			pages++;
		/* an export held past the QP: the page waits for it */
		x.fd = -1;
		if (i % 4 == 1)
			x = export_db(&q, IBV_PEER_EXPORT_EXCLUSIVE);
		if (db_qp_destroy(&q))
			die("destroy qp %d", i);
		if (x.fd >= 0)
			close(x.fd);
		for (j = 0; j < nr_offs && offs[j] != q.offset; j++)
			;
		if (j == nr_offs) {
			if (nr_offs == 32)
				die("%d QPs used %d pages at more than 32 offsets: pages are not freed",
				    i + 1, pages);
			offs[nr_offs++] = q.offset;
		}
	}
	printf("# %d QPs, %d doorbell pages, %d distinct page offsets\n", n, pages, nr_offs);
	ok("retired doorbell pages are freed once unmapped");
	ibv_destroy_cq(cq);
	vt_dev_close(&d);
}

/* Post and ring until killed; with "close", close the context mid-ring. */
static void t_ring_forever(int do_close)
{
	struct ibv_peer_db_dmabuf x;
	struct ringer_arg r;
	struct db_qp q[4];
	struct ibv_cq *cq;
	struct vt_dev d;
	pthread_t t;
	uint64_t n = 0;
	int j;

	open_dev(&d);
	cq = ibv_create_cq(d.ctx, 256, NULL, NULL, 0);
	for (j = 0; j < 4; j++) {
		db_qp_create(&d, &q[j], cq, j & 1 ? IBV_PEER_QP_RING_BY_PEER : DBQ_PLAIN);
		db_qp_connect(&q[j]);
	}
	printf("ready\n");
	fflush(stdout);
	if (do_close) {
		/* a thread keeps ringing while the context goes away */
		r = stale_ringer_of(&q[0]);
		stop_ringing = 0;
		pthread_create(&t, NULL, ringer, &r);
		for (n = 0; n < 200; n++) {
			for (j = 0; j < 4; j++) {
				if (j & 1) {
					db_build_write(&q[j], n, 4096, 65536, 8);
					db_peer_ring(&q[j]);
				} else {
					db_post_write(&q[j], n, 4096, 65536, 8);
				}
			}
			vt_wait_cq(cq, 4, 10000, NULL);
		}
		/* no destroy: closing the device cleans up with rings in flight */
		x = export_db(&q[1], 0);
		ibv_close_device(d.ctx);
		usleep(100000);
		/* the dma-buf was revoked; closing it last is fine */
		close(x.fd);
		stop_ringing = 1;
		pthread_join(t, NULL);
		munmap(r.page, db_page_size());
		ok("context closed with rings in flight");
		return;
	}
	/* held until the process dies: teardown revokes it */
	x = export_db(&q[1], 0);
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		struct ibv_wc wc[4];

		for (j = 0; j < 4; j++) {
			struct ibv_send_wr wr, *bad;
			struct ibv_sge sge;

			if (j & 1) {
				/*
				 * forged: a peer that never looks at the
				 * consumer index, so that it keeps ringing
				 * once the device is gone
				 */
				struct rxe_send_wqe *w = rxe_peer_sq_wqe(&q[j].psq, db_prod(&q[j]));

				rxe_peer_wqe_start(w, IBV_WR_RDMA_WRITE, n, IBV_SEND_SIGNALED);
				rxe_peer_wqe_set_rdma(w, (uintptr_t)d.buf + 65536, d.mr->rkey);
				rxe_peer_wqe_add_sge(w, (uintptr_t)d.buf + 4096, 8, d.mr->lkey);
				q[j].psq.prod = db_prod(&q[j]);
				rxe_peer_sq_produce(&q[j].psq, 1);
				rxe_peer_sq_ring(&q[j].psq);
			} else {
				/* after a device removal it fails (full, EIO): go on */
				vt_write_wr(&q[j].v, &wr, &sge, n, 4096, 65536, 8);
				ibv_post_send(q[j].v.qp, &wr, &bad);
			}
		}
		n++;
		/* drain whatever completes; never wait */
		while (ibv_poll_cq(cq, 4, wc) > 0)
			;
		usleep(100);
	}
}

int main(int argc, char **argv)
{
	const char *t, *env = getenv("RXE_DOORBELL");

	if (argc < 3) {
		fprintf(stderr, "usage: %s DEV TEST [ARGS]\n", argv[0]);
		return 2;
	}
	dev_name = argv[1];
	t = argv[2];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (env && strcmp(env, "page"))
		die("RXE_DOORBELL=%s: the tests need the provider's doorbells", env);
	if (!strcmp(t, "basic"))
		t_basic(argc >= 4 && !strcmp(argv[3], "off"));
	else if (!strcmp(t, "threads") && argc >= 6)
		t_threads(atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
	else if (!strcmp(t, "wakeup") && argc >= 4)
		t_wakeup(atoi(argv[3]));
	else if (!strcmp(t, "garbage"))
		t_garbage();
	else if (!strcmp(t, "isolation"))
		t_isolation();
	else if (!strcmp(t, "destroy-ring"))
		t_destroy_ring();
	else if (!strcmp(t, "ring-forever"))
		t_ring_forever(argc >= 4 && !strcmp(argv[3], "close"));
	else if (!strcmp(t, "queues"))
		t_queues();
	else if (!strcmp(t, "stale-fork"))
		t_stale_fork();
	else if (!strcmp(t, "stale-dmabuf"))
		t_stale_dmabuf();
	else if (!strcmp(t, "dedicated"))
		t_dedicated();
	else if (!strcmp(t, "churn") && argc >= 4)
		t_churn(atoi(argv[3]));
	else
		die("unknown test %s", t);
	return 0;
}
