// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * rxe doorbell pages, driven by hand (see rxe_db.h).
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
 * stale-dmabuf and dedicated need the p2p_mmap_test module (its importer
 * stands in for a peer device that holds the page's dma-buf).
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

/* One post + ring + completion, checking that the data arrived. */
static void write_and_check(struct raw_qp *q, uint32_t seq, int ring)
{
	struct db_dev *d = q->d;
	size_t src = 4096 + (size_t)q->qpn % 64 * 64, dst = 65536 + (size_t)q->qpn % 64 * 64;

	memcpy(d->buf + src, &seq, sizeof(seq));
	raw_qp_post_write(q, seq, src, dst, sizeof(seq));
	if (ring)
		raw_qp_ring(q);
	else
		raw_qp_kick(q);
	if (wait_cq(q->cq, 1, 10000, NULL) != 1)
		die("qp %u: no completion for ring %u (slot flags %#x)", q->qpn, seq,
		    q->has_db ? raw_qp_slot_flags(q) : 0);
	if (memcmp(d->buf + dst, &seq, sizeof(seq)))
		die("qp %u: data of ring %u did not arrive", q->qpn, seq);
}

static void t_basic(int mode_off)
{
	struct db_dev d;
	struct raw_qp q, old;
	struct ibv_cq *cq;
	uint32_t i;
	int err, fd;

	db_dev_open(&d, dev_name);
	cq = ibv_create_cq(d.ctx, 64, NULL, NULL, 0);

	/* What an old rdma-core sends: no request, the old response. */
	err = raw_qp_create(&d, &old, cq, -1, 16, offsetof(struct rxe_create_qp_resp, db_offset));
	if (err)
		die("old-style create qp: %s", strerror(err));
	raw_qp_connect(&old);
	for (i = 0; i < 10; i++)
		write_and_check(&old, 100 + i, 0);
	raw_qp_destroy(&old);
	ok("old-style create-QP and system call kicks");

	err = raw_qp_create(&d, &q, cq, RXE_CREATE_QP_DOORBELL, 16,
			    offsetof(struct rxe_create_qp_resp, db_offset));
	if (err != EINVAL)
		die("doorbell with a short response: got %s, want EINVAL", strerror(err));
	err = raw_qp_create(&d, &q, cq, 1 << 7, 16, sizeof(struct rxe_create_qp_resp));
	if (err != EOPNOTSUPP)
		die("unknown create flag: got %s, want EOPNOTSUPP", strerror(err));
	ok("malformed doorbell requests are refused");

	err = raw_qp_create(&d, &q, cq, RXE_CREATE_QP_DOORBELL, 16,
			    sizeof(struct rxe_create_qp_resp));
	if (err)
		die("create doorbell qp: %s", strerror(err));
	/* one offset space, the context's mmap database: no range apart */
	if (q.sq_offset >= (0x80000000ULL * sysconf(_SC_PAGESIZE)))
		die("queue offset %#llx: rxe's own offset range is back",
		    (unsigned long long)q.sq_offset);
	if (!(raw_qp_slot_flags(&q) & RXE_DB_NEED_WAKEUP))
		die("a new slot must ask for a kick");
	if (le32toh(q.slot->sq_prod) != RXE_DB_IDLE)
		die("a new slot must be idle");
	printf("# doorbell page offset %#llx slot %u\n",
	       (unsigned long long)q.db_offset, q.db_index);
	raw_qp_connect(&q);
	for (i = 0; i < 1000; i++)
		write_and_check(&q, i, 1);
	printf("# 1000 rings, %lu system call kicks\n", q.kicks);
	if (mode_off && q.kicks != 1000)
		die("db_mode=off: %lu kicks for 1000 rings", q.kicks);
	if (!mode_off && q.kicks >= 1000)
		die("every ring needed a kick: the engine never polled");
	ok("WQEs rung through the doorbell page complete");

	/* a munmap()ed page can be mapped again, a larger mapping cannot */
	if (mmap(NULL, 2 * sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE, MAP_SHARED,
		 d.ctx->cmd_fd, q.db_offset) != MAP_FAILED)
		die("mapping two pages at the doorbell offset succeeded");
	ok("a doorbell mapping cannot be larger than the page");

	/* the page carries p2p ops: the generic dma-buf export works */
	fd = ibv_cmd_export_dmabuf_fd(d.ctx, q.db_offset);
	if (fd < 0)
		die("export the doorbell page as a dma-buf: %s", strerror(errno));
	if (lseek(fd, 0, SEEK_END) != sysconf(_SC_PAGESIZE))
		die("the dma-buf is not one page");
	close(fd);
	ok("the doorbell page exports as a dma-buf");

	raw_qp_destroy(&q);
	ibv_destroy_cq(cq);
	db_dev_close(&d);
}

struct thr {
	pthread_t t;
	int id, nqp, n;
	struct db_dev *d;
	unsigned long kicks, done;
};

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	struct raw_qp *q = calloc(t->nqp, sizeof(*q));
	struct ibv_cq *cq = ibv_create_cq(t->d->ctx, 4 * t->nqp + 16, NULL, NULL, 0);
	unsigned int seed = t->id;
	int i, j, err;

	if (!cq)
		die("thread cq");
	for (j = 0; j < t->nqp; j++) {
		err = raw_qp_create(t->d, &q[j], cq, RXE_CREATE_QP_DOORBELL, 8,
				    sizeof(struct rxe_create_qp_resp));
		if (err)
			die("thread %d create qp: %s", t->id, strerror(err));
		raw_qp_connect(&q[j]);
	}
	for (i = 0; i < t->n; i++) {
		/* post one WQE on each QP and ring each, then collect */
		for (j = 0; j < t->nqp; j++) {
			raw_qp_post_write(&q[j], i, 4096 + 64 * t->id, 65536 + 64 * t->id, 8);
			raw_qp_ring(&q[j]);
		}
		if (wait_cq(cq, t->nqp, 20000, NULL) != t->nqp) {
			for (j = 0; j < t->nqp; j++)
				fprintf(stderr, "# qp %u prod %u cons %u slot %#x flags %#x kicks %lu\n",
					q[j].qpn, q[j].prod, q[j].sq->consumer_index,
					le32toh(q[j].slot->sq_prod), raw_qp_slot_flags(&q[j]),
					q[j].kicks);
			die("thread %d round %d: a ring was lost", t->id, i);
		}
		t->done += t->nqp;
		/* now and then stay away longer than the idle timeout */
		if (rand_r(&seed) % 64 == 0)
			usleep(rand_r(&seed) % 3000);
	}
	for (j = 0; j < t->nqp; j++) {
		t->kicks += q[j].kicks;
		raw_qp_destroy(&q[j]);
	}
	ibv_destroy_cq(cq);
	free(q);
	return NULL;
}

static void t_threads(int nthr, int nqp, int n)
{
	struct thr *t = calloc(nthr, sizeof(*t));
	unsigned long kicks = 0, done = 0;
	struct db_dev d;
	int i;

	db_dev_open(&d, dev_name);
	for (i = 0; i < nthr; i++) {
		t[i] = (struct thr){ .id = i, .nqp = nqp, .n = n, .d = &d };
		pthread_create(&t[i].t, NULL, thr_main, &t[i]);
	}
	for (i = 0; i < nthr; i++) {
		pthread_join(t[i].t, NULL);
		kicks += t[i].kicks;
		done += t[i].done;
	}
	printf("# %lu completions of %lu rings, %lu system call kicks\n",
	       done, (unsigned long)nthr * nqp * n, kicks);
	if (done != (unsigned long)nthr * nqp * n)
		die("completions missing");
	ok("rings from many threads on many QPs are never lost");
	free(t);
	db_dev_close(&d);
}

static void t_wakeup(int idle_us)
{
	struct db_dev d;
	struct raw_qp q, p;
	struct ibv_cq *cq;
	unsigned long k;
	int i, err;

	db_dev_open(&d, dev_name);
	cq = ibv_create_cq(d.ctx, 64, NULL, NULL, 0);
	err = raw_qp_create(&d, &q, cq, RXE_CREATE_QP_DOORBELL, 16,
			    sizeof(struct rxe_create_qp_resp));
	if (err)
		die("create: %s", strerror(err));
	raw_qp_connect(&q);

	write_and_check(&q, 1, 1);
	if (q.kicks != 1)
		die("first ring: %lu kicks, want 1", q.kicks);
	if (raw_qp_slot_flags(&q) & RXE_DB_NEED_WAKEUP)
		die("a kick must arm the slot");
	ok("the first ring kicks and arms the slot");

	/* rings closer together than the idle timeout need no kick */
	k = q.kicks;
	for (i = 0; i < 20; i++)
		write_and_check(&q, 2 + i, 1);
	printf("# 20 quick rings, %lu kicks\n", q.kicks - k);

	/* after the idle timeout the engine lets go and says so */
	usleep(idle_us * 5 + 200000);
	if (!(raw_qp_slot_flags(&q) & RXE_DB_NEED_WAKEUP))
		die("slot still armed %d us after the last ring", idle_us * 5 + 200000);
	ok("the engine sets need-wakeup after the idle timeout");
	k = q.kicks;
	write_and_check(&q, 100, 1);
	if (q.kicks != k + 1)
		die("ring after idle did not kick");
	ok("the need-wakeup fallback kick works");

	/* a peer slot: rung by a "device" that never kicks */
	err = raw_qp_create(&d, &p, cq, RXE_CREATE_QP_DOORBELL_PEER, 16,
			    sizeof(struct rxe_create_qp_resp));
	if (err)
		die("create peer qp: %s", strerror(err));
	raw_qp_connect(&p);
	for (i = 0; i < 5; i++) {
		uint32_t seq = 200 + i;

		usleep(idle_us * 5 + 100000);
		memcpy(d.buf + 8192, &seq, 4);
		raw_qp_post_write(&p, seq, 8192, 16384, 4);
		raw_qp_ring_value(&p, p.prod);
		if (wait_cq(cq, 1, 10000, NULL) != 1)
			die("peer ring %d while the engine slept was not noticed", i);
	}
	ok("peer slots are scanned while the engine sleeps");
	raw_qp_destroy(&p);
	raw_qp_destroy(&q);
	ibv_destroy_cq(cq);
	db_dev_close(&d);
}

static void t_garbage(void)
{
	struct db_dev d;
	struct raw_qp a, b;
	struct ibv_cq *cqa, *cqb;
	struct rxe_db_slot *page;
	struct ibv_wc wc;
	unsigned int i;
	double end;
	int err;

	db_dev_open(&d, dev_name);
	cqa = ibv_create_cq(d.ctx, 64, NULL, NULL, 0);
	cqb = ibv_create_cq(d.ctx, 64, NULL, NULL, 0);
	err = raw_qp_create(&d, &a, cqa, RXE_CREATE_QP_DOORBELL, 16,
			    sizeof(struct rxe_create_qp_resp));
	if (!err)
		err = raw_qp_create(&d, &b, cqb, RXE_CREATE_QP_DOORBELL, 16,
				    sizeof(struct rxe_create_qp_resp));
	if (err)
		die("create: %s", strerror(err));
	raw_qp_connect(&a);
	raw_qp_connect(&b);
	write_and_check(&a, 1, 1);
	write_and_check(&b, 1, 1);

	/* spurious: in range, but not what the queue says; harmless */
	raw_qp_ring_value(&b, (b.prod + 3) & b.sq->index_mask);
	raw_qp_kick(&b);
	usleep(100000);
	write_and_check(&b, 2, 1);
	ok("a spurious ring is harmless");

	/* rings in slots nobody owns, and the kernel-owned flags word */
	page = b.db_page;
	for (i = 0; i < sysconf(_SC_PAGESIZE) / sizeof(*page); i++) {
		if (i == a.db_index || i == b.db_index)
			continue;
		page[i].sq_prod = htole32(0xdeadbeef);
		page[i].flags = htole32(0xffffffff);
	}
	usleep(100000);
	write_and_check(&b, 3, 1);
	write_and_check(&a, 3, 1);
	ok("rings in unused slots do nothing");

	/* invalid: beyond the queue; moves a (only) to the error state */
	raw_qp_ring_value(&a, 0xdeadbeef);
	raw_qp_kick(&a);
	end = now_us() + 10e6;
	while (!(raw_qp_slot_flags(&a) & RXE_DB_QP_ERROR))
		if (now_us() > end)
			die("invalid ring: no RXE_DB_QP_ERROR");
	raw_qp_post_write(&a, 77, 4096, 65536, 4);
	raw_qp_ring(&a);
	if (wait_cq(cqa, 1, 10000, &wc) != 1)
		die("invalid ring: WQE after the error was not flushed");
	if (wc.status == IBV_WC_SUCCESS)
		die("invalid ring: QP still sends");
	printf("# after the invalid ring: %s\n", ibv_wc_status_str(wc.status));
	ok("an invalid ring moves the QP to the error state");
	for (i = 0; i < 20; i++)
		write_and_check(&b, 10 + i, 1);
	if (raw_qp_slot_flags(&b) & RXE_DB_QP_ERROR)
		die("the other QP's slot got RXE_DB_QP_ERROR");
	ok("other QPs carry on");

	/* the flag lasts as long as the error state, no longer */
	raw_qp_reset_connect(&a);
	if (raw_qp_slot_flags(&a) & RXE_DB_QP_ERROR)
		die("RXE_DB_QP_ERROR is still set after the reset");
	for (i = 0; i < 10; i++)
		write_and_check(&a, 100 + i, 1);
	ok("a reset clears RXE_DB_QP_ERROR and the QP works again");

	raw_qp_destroy(&a);
	raw_qp_destroy(&b);
	ibv_destroy_cq(cqa);
	ibv_destroy_cq(cqb);
	db_dev_close(&d);
}

static void t_isolation(void)
{
	struct db_dev d;
	struct raw_qp q;
	struct ibv_cq *cq;
	int err, status;
	pid_t pid;

	db_dev_open(&d, dev_name);
	cq = ibv_create_cq(d.ctx, 64, NULL, NULL, 0);
	err = raw_qp_create(&d, &q, cq, RXE_CREATE_QP_DOORBELL, 16,
			    sizeof(struct rxe_create_qp_resp));
	if (err)
		die("create: %s", strerror(err));
	raw_qp_connect(&q);
	write_and_check(&q, 1, 1);

	pid = fork();
	if (pid == 0) {
		/* another process: its own uverbs file and context */
		struct db_dev d2;
		struct raw_qp q2;
		struct ibv_cq *cq2;
		struct rxe_db_slot *page;
		void *p;
		unsigned int i;

		db_dev_open(&d2, dev_name);
		p = mmap(NULL, sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE,
			 MAP_SHARED, d2.ctx->cmd_fd, q.db_offset);
		if (p != MAP_FAILED)
			die("a second process mapped the first one's doorbell page");
		if (ibv_cmd_export_dmabuf_fd(d2.ctx, q.db_offset) >= 0)
			die("a second process exported the first one's doorbell page");
		cq2 = ibv_create_cq(d2.ctx, 64, NULL, NULL, 0);
		err = raw_qp_create(&d2, &q2, cq2, RXE_CREATE_QP_DOORBELL, 16,
				    sizeof(struct rxe_create_qp_resp));
		if (err)
			die("child create: %s", strerror(err));
		/* ring every slot of its own page with garbage */
		page = q2.db_page;
		for (i = 0; i < sysconf(_SC_PAGESIZE) / sizeof(*page); i++)
			page[i].sq_prod = htole32(0xdeadbeef);
		usleep(200000);
		exit(0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		die("second process failed");
	if (raw_qp_slot_flags(&q) & RXE_DB_QP_ERROR)
		die("the second process' rings reached our QP");
	write_and_check(&q, 2, 1);
	ok("a second process can neither map nor ring our slots");
	raw_qp_destroy(&q);
	ibv_destroy_cq(cq);
	db_dev_close(&d);
}

static volatile int stop_ringing;

/* Rings in-range values, mostly spurious ones, as fast as it can. */
static void *ringer(void *arg)
{
	struct raw_qp *q = arg;
	uint32_t mask = q->sq->index_mask, v = 0;

	while (!stop_ringing)
		raw_qp_ring_value(q, v++ & mask);
	return NULL;
}

static void t_destroy_ring(void)
{
	struct db_dev d;
	struct raw_qp q, q2;
	struct ibv_cq *cq;
	pthread_t t;
	int round, err;

	db_dev_open(&d, dev_name);
	cq = ibv_create_cq(d.ctx, 256, NULL, NULL, 0);
	for (round = 0; round < 20; round++) {
		err = raw_qp_create(&d, &q, cq, round & 1 ? RXE_CREATE_QP_DOORBELL_PEER :
				    RXE_CREATE_QP_DOORBELL, 16,
				    sizeof(struct rxe_create_qp_resp));
		if (err)
			die("create: %s", strerror(err));
		raw_qp_connect(&q);
		write_and_check(&q, round, 1);
		/* keep the old mapping to ring the freed slot afterwards */
		q.db_page = NULL;
		stop_ringing = 0;
		pthread_create(&t, NULL, ringer, &q);
		usleep(20000);
		raw_qp_kick(&q);
		if (raw_qp_destroy(&q))
			die("destroy with rings in flight");
		usleep(20000);
		stop_ringing = 1;
		pthread_join(t, NULL);
		/* the slot is retired: a new QP gets another, and works */
		err = raw_qp_create(&d, &q2, cq, RXE_CREATE_QP_DOORBELL, 16,
				    sizeof(struct rxe_create_qp_resp));
		if (err)
			die("create after destroy: %s", strerror(err));
		raw_qp_connect(&q2);
		write_and_check(&q2, 1000 + round, 1);
		raw_qp_destroy(&q2);
		munmap((void *)((uintptr_t)q.slot & ~((uintptr_t)sysconf(_SC_PAGESIZE) - 1)),
		       sysconf(_SC_PAGESIZE));
		while (ibv_poll_cq(cq, 1, &(struct ibv_wc){}) > 0)
			;
	}
	ok("QP destroy with rings in flight; the freed slot is harmless");
	ibv_destroy_cq(cq);
	db_dev_close(&d);
}

/* Post and ring until killed; with "close", close the context mid-ring. */
/* An rxe port counter, from sysfs. */
static unsigned long long hw_counter(const char *name)
{
	unsigned long long v;
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path),
		 "/sys/class/infiniband/%s/ports/1/hw_counters/%s", dev_name, name);
	f = fopen(path, "r");
	if (!f)
		die("open %s: %s", path, strerror(errno));
	if (fscanf(f, "%llu", &v) != 1)
		die("read %s", path);
	fclose(f);
	return v;
}

static uint32_t slot_value(void *page, uint32_t index)
{
	volatile struct rxe_db_slot *slot = (struct rxe_db_slot *)page + index;

	return le32toh(__atomic_load_n(&slot->sq_prod, __ATOMIC_ACQUIRE));
}

static int same_slot(const struct raw_qp *a, const struct raw_qp *b)
{
	return a->db_offset == b->db_offset && a->db_index == b->db_index;
}

/* A peer ring through the test module's importer of an exported page. */
static void peer_write(uint32_t index, uint32_t val)
{
	int err = p2p_test_ctl("write %d %zu %x", IMP_FOREIGN,
			       index * sizeof(struct rxe_db_slot), val);

	if (err)
		die("peer write of %#x to slot %u: %s", val, index, strerror(err));
}

static void create_db_qp(struct db_dev *d, struct raw_qp *q, struct ibv_cq *cq, int flags)
{
	int err = raw_qp_create(d, q, cq, flags, 16, sizeof(struct rxe_create_qp_resp));

	if (err)
		die("create doorbell qp (flags %#x): %s", flags, strerror(err));
}

/* A peer slot rung without a kick completes (the engine scans it). */
static void peer_ring_and_check(struct raw_qp *q, uint32_t seq, int through_module)
{
	struct db_dev *d = q->d;

	memcpy(d->buf + 8192, &seq, 4);
	raw_qp_post_write(q, seq, 8192, 16384, 4);
	if (through_module)
		peer_write(q->db_index, q->prod);
	else
		raw_qp_ring_value(q, q->prod);
	if (wait_cq(q->cq, 1, 10000, NULL) != 1)
		die("qp %u: peer ring %u was not noticed", q->qpn, seq);
	if (memcmp(d->buf + 16384, &seq, 4))
		die("qp %u: data of peer ring %u did not arrive", q->qpn, seq);
}

/* Wait until a slot that nobody consumes holds a stale ringer's value. */
static uint32_t wait_stale_value(void *page, uint32_t index)
{
	double end = now_us() + 10e6;
	uint32_t v;

	while ((v = slot_value(page, index)) == RXE_DB_IDLE)
		if (now_us() > end)
			die("the stale ringer never rang slot %u", index);
		else
			usleep(1000);
	return v;
}

/*
 * Queue buffers are mmap entries of the context: they map (again) while
 * they exist, shared and whole only; resized CQs and SRQs get new ones.
 */
static void t_queues(void)
{
	long page = sysconf(_SC_PAGESIZE);
	struct ibv_srq_init_attr sia = { .attr = { .max_wr = 16, .max_sge = 1 } };
	struct ibv_srq_attr sa = {};
	struct ibv_recv_wr rwr = {}, *bad;
	struct ibv_sge sge;
	struct rxe_queue_buf *p;
	struct ibv_wc wc;
	struct ibv_srq *srq;
	struct ibv_cq *cq;
	struct db_dev d;
	struct raw_qp q;
	int seen[10] = {}, i, n;

	db_dev_open(&d, dev_name);
	cq = ibv_create_cq(d.ctx, 16, NULL, NULL, 0);
	if (!cq)
		die("create cq");
	create_db_qp(&d, &q, cq, RXE_CREATE_QP_DOORBELL);
	raw_qp_connect(&q);

	p = mmap(NULL, q.sq_size, PROT_READ | PROT_WRITE, MAP_SHARED, d.ctx->cmd_fd,
		 q.sq_offset);
	if (p == MAP_FAILED)
		die("second mapping of the send queue: %s", strerror(errno));
	/* a WQE slot ahead of the producer index: nobody reads it */
	i = ((q.prod + 2) & q.sq->index_mask) << q.sq->log2_elem_size;
	p->data[i] = 0x5a;
	if (p->index_mask != q.sq->index_mask || q.sq->data[i] != 0x5a)
		die("the second mapping is not the same queue");
	munmap(p, q.sq_size);
	if (mmap(NULL, q.sq_size + page, PROT_READ | PROT_WRITE, MAP_SHARED,
		 d.ctx->cmd_fd, q.sq_offset) != MAP_FAILED)
		die("a mapping larger than the send queue succeeded");
	if (mmap(NULL, q.sq_size, PROT_READ | PROT_WRITE, MAP_PRIVATE,
		 d.ctx->cmd_fd, q.sq_offset) != MAP_FAILED)
		die("a private mapping of the send queue succeeded");
	ok("a queue maps again while it exists, shared and whole only");

	/* completions on their way while the CQ moves to a new buffer */
	for (i = 0; i < 10; i++)
		raw_qp_post_write(&q, i, 4096 + 64 * i, 65536 + 64 * i, 8);
	raw_qp_ring(&q);
	if (ibv_resize_cq(cq, 256))
		die("resize cq: %s", strerror(errno));
	for (n = 0; n < 10; n++) {
		if (wait_cq(cq, 1, 10000, &wc) != 1)
			die("resized cq: %d of 10 completions", n);
		if (wc.status != IBV_WC_SUCCESS || wc.wr_id >= 10 || seen[wc.wr_id]++)
			die("resized cq: completion wr_id %llu status %s",
			    (unsigned long long)wc.wr_id, ibv_wc_status_str(wc.status));
	}
	for (i = 0; i < 100; i++)
		write_and_check(&q, 1000 + i, 1);
	if (ibv_resize_cq(cq, 32))
		die("shrink cq: %s", strerror(errno));
	for (i = 0; i < 20; i++)
		write_and_check(&q, 2000 + i, 1);
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

	raw_qp_destroy(&q);
	if (mmap(NULL, q.sq_size, PROT_READ | PROT_WRITE, MAP_SHARED, d.ctx->cmd_fd,
		 q.sq_offset) != MAP_FAILED)
		die("the send queue of a destroyed QP can still be mapped");
	ok("a destroyed QP's queues cannot be mapped");
	ibv_destroy_cq(cq);
	db_dev_close(&d);
}

/*
 * A forked child that inherited the page keeps ringing the slot of a QP
 * its parent destroyed, with the old producer index and with garbage. No
 * other QP may notice: the slot is never handed out again.
 */
static void t_stale_fork(void)
{
	struct raw_qp a, b, p;
	unsigned long long inv0;
	struct ibv_cq *cq;
	struct db_dev d;
	uint32_t aprod;
	int i, status;
	pid_t pid;

	db_dev_open(&d, dev_name);
	cq = ibv_create_cq(d.ctx, 64, NULL, NULL, 0);
	create_db_qp(&d, &a, cq, RXE_CREATE_QP_DOORBELL);
	raw_qp_connect(&a);
	for (i = 0; i < 3; i++)
		write_and_check(&a, i, 1);
	aprod = a.prod;
	inv0 = hw_counter("db_invalid_rings");

	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		/* the child: only the inherited mapping, until killed */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (i = 0;; i++) {
			raw_qp_ring_value(&a, i & 1 ? 0xdeadbeef : aprod);
			usleep(20);
		}
	}

	/*
	 * The parent's mapping goes with its QP; the child keeps its own. The
	 * peer QP comes first: had it the old slot, the engine's scan would
	 * judge every stale ring in it.
	 */
	if (raw_qp_destroy(&a))
		die("destroy qp");
	create_db_qp(&d, &p, cq, RXE_CREATE_QP_DOORBELL_PEER);
	create_db_qp(&d, &b, cq, RXE_CREATE_QP_DOORBELL);
	printf("# destroyed qp had slot %u at %#llx; new qps: slot %u at %#llx, slot %u at %#llx\n",
	       a.db_index, (unsigned long long)a.db_offset, b.db_index,
	       (unsigned long long)b.db_offset, p.db_index, (unsigned long long)p.db_offset);
	raw_qp_connect(&b);
	raw_qp_connect(&p);
	for (i = 0; i < 100; i++)
		write_and_check(&b, 100 + i, 1);
	for (i = 0; i < 3; i++)
		peer_ring_and_check(&p, 300 + i, 0);
	if ((raw_qp_slot_flags(&b) | raw_qp_slot_flags(&p)) & RXE_DB_QP_ERROR)
		die("a stale ring moved a new QP to the error state");
	if (hw_counter("db_invalid_rings") != inv0)
		die("the child's garbage was judged as a ring");
	if (same_slot(&a, &b) || same_slot(&a, &p))
		die("the slot of a destroyed QP was handed out again");
	if (b.db_offset == a.db_offset) {
		uint32_t v = wait_stale_value(b.db_page, a.db_index);

		if (v != aprod && v != 0xdeadbeef)
			die("the old slot holds %#x, not the child's ring", v);
		printf("# the old slot holds the child's ring %#x, unconsumed\n", v);
	}
	if (kill(pid, SIGKILL) || waitpid(pid, &status, 0) != pid)
		die("kill the child");
	ok("a forked child ringing a destroyed QP's slot reaches no other QP");
	raw_qp_destroy(&b);
	raw_qp_destroy(&p);
	ibv_destroy_cq(cq);
	db_dev_close(&d);
}

/*
 * A peer holding the page's dma-buf rings the slot of a destroyed QP while
 * the page lives on for other QPs: nothing happens to them.
 */
static void t_stale_dmabuf(void)
{
	struct raw_qp k, a, b, p;
	unsigned long long inv0;
	struct ibv_cq *cq;
	struct db_dev d;
	uint32_t aprod, last;
	int i, fd, err;

	db_dev_open(&d, dev_name);
	cq = ibv_create_cq(d.ctx, 64, NULL, NULL, 0);
	create_db_qp(&d, &k, cq, RXE_CREATE_QP_DOORBELL);
	create_db_qp(&d, &a, cq, RXE_CREATE_QP_DOORBELL);
	if (a.db_offset != k.db_offset)
		die("two QPs of a context did not share a page");
	raw_qp_connect(&k);
	raw_qp_connect(&a);
	for (i = 0; i < 3; i++) {
		write_and_check(&k, i, 1);
		write_and_check(&a, i, 1);
	}
	aprod = a.prod;

	fd = ibv_cmd_export_dmabuf_fd(d.ctx, k.db_offset);
	if (fd < 0)
		die("export the page: %s", strerror(errno));
	err = p2p_test_ctl("attach %d", fd);
	if (err)
		die("the peer could not import the page: %s", strerror(err));
	inv0 = hw_counter("db_invalid_rings");

	/* the peer QP first, as in stale-fork */
	if (raw_qp_destroy(&a))
		die("destroy qp");
	create_db_qp(&d, &p, cq, RXE_CREATE_QP_DOORBELL_PEER);
	create_db_qp(&d, &b, cq, RXE_CREATE_QP_DOORBELL);
	raw_qp_connect(&b);
	raw_qp_connect(&p);

	/*
	 * The peer, unaware, rings the old slot: the old index, one that
	 * would be spurious for p, then garbage, which stays there.
	 */
	peer_write(a.db_index, aprod);
	peer_write(a.db_index, p.prod + 1);
	last = 0xdeadbeef;
	peer_write(a.db_index, last);
	for (i = 0; i < 50; i++)
		write_and_check(&b, 100 + i, 1);
	for (i = 0; i < 3; i++)
		peer_ring_and_check(&p, 300 + i, 0);
	write_and_check(&k, 100, 1);
	if ((raw_qp_slot_flags(&b) | raw_qp_slot_flags(&p) | raw_qp_slot_flags(&k)) &
	    RXE_DB_QP_ERROR)
		die("a stale peer ring moved a QP to the error state");
	if (hw_counter("db_invalid_rings") != inv0)
		die("the peer's garbage was judged as a ring");
	if (same_slot(&a, &b) || same_slot(&a, &p))
		die("the slot of a destroyed QP was handed out again");
	if (slot_value(k.db_page, a.db_index) != last)
		die("the old slot was consumed: %#x", slot_value(k.db_page, a.db_index));
	ok("a dma-buf holder ringing a destroyed QP's slot reaches no other QP");

	/* the same export still rings the live peer QP */
	for (i = 0; i < 3; i++)
		peer_ring_and_check(&p, 400 + i, 1);
	ok("the export still rings the page's live QPs");

	raw_qp_destroy(&k);
	raw_qp_destroy(&b);
	raw_qp_destroy(&p);
	ibv_destroy_cq(cq);
	close(fd);
	/* the page had slots left to give: it goes with the context */
	db_dev_close(&d);
	err = p2p_test_ctl("revoked %d rxe-stale-context-close", IMP_FOREIGN);
	if (err)
		die("closing the context did not revoke the peer: %s", strerror(err));
	ok("closing the context revokes the peer's import");
}

/*
 * RXE_CREATE_QP_DOORBELL_DEDICATED: the QP's slot is alone in its page; an
 * export of that page rings that QP and no other, and goes with the QP.
 */
static void t_dedicated(void)
{
	long pagesize = sysconf(_SC_PAGESIZE);
	struct raw_qp s, s2, x, y;
	unsigned long long inv0;
	struct ibv_cq *cq;
	struct db_dev d;
	uint32_t i;
	int fd, err;

	db_dev_open(&d, dev_name);
	cq = ibv_create_cq(d.ctx, 64, NULL, NULL, 0);
	create_db_qp(&d, &s, cq, RXE_CREATE_QP_DOORBELL);
	create_db_qp(&d, &x, cq, RXE_CREATE_QP_DOORBELL_DEDICATED | RXE_CREATE_QP_DOORBELL_PEER);
	create_db_qp(&d, &y, cq, RXE_CREATE_QP_DOORBELL_DEDICATED);
	create_db_qp(&d, &s2, cq, RXE_CREATE_QP_DOORBELL);
	if (x.db_flags != (RXE_CREATE_QP_DOORBELL | RXE_CREATE_QP_DOORBELL_PEER |
			   RXE_CREATE_QP_DOORBELL_DEDICATED) ||
	    y.db_flags != (RXE_CREATE_QP_DOORBELL | RXE_CREATE_QP_DOORBELL_DEDICATED))
		die("granted flags %#x and %#x", x.db_flags, y.db_flags);
	if (x.db_index || y.db_index || x.db_offset == s.db_offset ||
	    y.db_offset == s.db_offset || x.db_offset == y.db_offset)
		die("dedicated slots %u at %#llx and %u at %#llx, shared page at %#llx",
		    x.db_index, (unsigned long long)x.db_offset, y.db_index,
		    (unsigned long long)y.db_offset, (unsigned long long)s.db_offset);
	if (s2.db_offset != s.db_offset)
		die("a dedicated page took the shared page's place");
	ok("dedicated slots sit alone in pages of their own");
	raw_qp_connect(&s);
	raw_qp_connect(&s2);
	raw_qp_connect(&x);
	raw_qp_connect(&y);
	write_and_check(&x, 1, 1);
	write_and_check(&y, 1, 1);
	write_and_check(&s, 1, 1);

	fd = ibv_cmd_export_dmabuf_fd(d.ctx, x.db_offset);
	if (fd < 0 || lseek(fd, 0, SEEK_END) != pagesize)
		die("export the dedicated page: %s", strerror(errno));
	err = p2p_test_ctl("attach %d", fd);
	if (err)
		die("the peer could not import the dedicated page: %s", strerror(err));
	for (i = 0; i < 3; i++)
		peer_ring_and_check(&x, 10 + i, 1);
	ok("the export of a dedicated page rings its QP");

	inv0 = hw_counter("db_invalid_rings");
	for (i = 1; i < pagesize / sizeof(struct rxe_db_slot); i++)
		peer_write(i, i & 1 ? 0xdeadbeef : 1);
	for (i = 0; i < 10; i++) {
		write_and_check(&s, 100 + i, 1);
		write_and_check(&s2, 100 + i, 1);
		write_and_check(&y, 100 + i, 1);
	}
	if ((raw_qp_slot_flags(&s) | raw_qp_slot_flags(&s2) | raw_qp_slot_flags(&y)) &
	    RXE_DB_QP_ERROR)
		die("the dedicated page's export reached another QP");
	for (i = 1; i < pagesize / sizeof(struct rxe_db_slot); i++)
		if (slot_value(x.db_page, i) != (i & 1 ? 0xdeadbeef : 1))
			die("slot %u of the dedicated page was consumed", i);
	if (hw_counter("db_invalid_rings") != inv0)
		die("a ring in the dedicated page's other slots was judged");
	peer_ring_and_check(&x, 20, 1);
	ok("the export of a dedicated page rings no other QP");

	/* the page goes with its QP: revoked, no longer mapped or exported */
	if (raw_qp_destroy(&x))
		die("destroy the dedicated qp");
	err = p2p_test_ctl("revoked %d rxe-dedicated-qp-destroy", IMP_FOREIGN);
	if (err)
		die("destroying the QP did not revoke its page's export: %s", strerror(err));
	close(fd);
	if (mmap(NULL, pagesize, PROT_READ | PROT_WRITE, MAP_SHARED, d.ctx->cmd_fd,
		 x.db_offset) != MAP_FAILED)
		die("the dedicated page of a destroyed QP can be mapped");
	fd = ibv_cmd_export_dmabuf_fd(d.ctx, x.db_offset);
	if (fd >= 0)
		die("the dedicated page of a destroyed QP can be exported");
	for (i = 0; i < 10; i++) {
		write_and_check(&s, 200 + i, 1);
		write_and_check(&y, 200 + i, 1);
	}
	ok("a dedicated page goes with its QP; the others carry on");

	raw_qp_destroy(&s);
	raw_qp_destroy(&s2);
	raw_qp_destroy(&y);
	ibv_destroy_cq(cq);
	db_dev_close(&d);
}

/*
 * QP churn in a process that unmaps: retired pages are freed, so their
 * mmap offsets come back and the offsets in use stay few.
 */
static void t_churn(int n)
{
	unsigned long long offs[32];
	int i, j, fd, nr_offs = 0, pages = 0;
	struct ibv_cq *cq;
	struct db_dev d;
	struct raw_qp q;

	db_dev_open(&d, dev_name);
	cq = ibv_create_cq(d.ctx, 64, NULL, NULL, 0);
	for (i = 0; i < n; i++) {
		create_db_qp(&d, &q, cq, i & 1 ? RXE_CREATE_QP_DOORBELL_DEDICATED :
			     RXE_CREATE_QP_DOORBELL);
		if (i & 1 || !q.db_index)
			pages++;
		/* an export held past the QP: the page waits for it */
		fd = i % 4 == 1 ? ibv_cmd_export_dmabuf_fd(d.ctx, q.db_offset) : -1;
		if (i % 4 == 1 && fd < 0)
			die("export: %s", strerror(errno));
		if (raw_qp_destroy(&q))
			die("destroy qp %d", i);
		if (fd >= 0)
			close(fd);
		for (j = 0; j < nr_offs && offs[j] != q.db_offset; j++)
			;
		if (j == nr_offs) {
			if (nr_offs == 32)
				die("%d QPs used %d pages at more than 32 offsets: pages are not freed",
				    i + 1, pages);
			offs[nr_offs++] = q.db_offset;
		}
	}
	printf("# %d QPs, %d doorbell pages, %d distinct page offsets\n", n, pages, nr_offs);
	ok("retired doorbell pages are freed once unmapped");
	ibv_destroy_cq(cq);
	db_dev_close(&d);
}

static void t_ring_forever(int do_close)
{
	struct db_dev d;
	struct raw_qp q[4];
	struct ibv_cq *cq;
	pthread_t t;
	uint64_t n = 0;
	int j, err, fd;

	db_dev_open(&d, dev_name);
	cq = ibv_create_cq(d.ctx, 256, NULL, NULL, 0);
	for (j = 0; j < 4; j++) {
		err = raw_qp_create(&d, &q[j], cq, j & 1 ? RXE_CREATE_QP_DOORBELL_PEER :
				    RXE_CREATE_QP_DOORBELL, 16,
				    sizeof(struct rxe_create_qp_resp));
		if (err)
			die("create: %s", strerror(err));
		raw_qp_connect(&q[j]);
	}
	printf("ready\n");
	fflush(stdout);
	if (do_close) {
		/* a thread keeps ringing while the context goes away */
		stop_ringing = 0;
		pthread_create(&t, NULL, ringer, &q[0]);
		for (n = 0; n < 200; n++) {
			for (j = 0; j < 4; j++) {
				raw_qp_post_write(&q[j], n, 4096, 65536, 8);
				raw_qp_ring(&q[j]);
			}
			wait_cq(cq, 4, 10000, NULL);
		}
		/* no destroy: closing the device cleans up with rings in flight */
		fd = ibv_cmd_export_dmabuf_fd(d.ctx, q[0].db_offset);
		if (fd < 0)
			die("export: %s", strerror(errno));
		ibv_close_device(d.ctx);
		usleep(100000);
		/* the dma-buf was revoked; closing it last is fine */
		close(fd);
		stop_ringing = 1;
		pthread_join(t, NULL);
		ok("context closed with rings in flight");
		return;
	}
	/* held until the process dies: teardown revokes it */
	fd = ibv_cmd_export_dmabuf_fd(d.ctx, q[1].db_offset);
	if (fd < 0)
		die("export: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		struct ibv_wc wc[4];

		for (j = 0; j < 4; j++) {
			raw_qp_post_write(&q[j], n, 4096, 65536, 8);
			raw_qp_ring_value(&q[j], q[j].prod);
			if (!(n % 16) && (raw_qp_slot_flags(&q[j]) & RXE_DB_NEED_WAKEUP)) {
				/* after a device removal the kick fails: keep ringing */
				struct {
					struct ib_uverbs_cmd_hdr hdr;
					struct ib_uverbs_post_send cmd;
				} req = {};
				struct ib_uverbs_post_send_resp resp;

				req.hdr.command = IB_USER_VERBS_CMD_POST_SEND;
				req.hdr.in_words = sizeof(req) / 4;
				req.hdr.out_words = sizeof(resp) / 4;
				req.cmd.response = (uintptr_t)&resp;
				req.cmd.qp_handle = q[j].handle;
				req.cmd.wqe_size = sizeof(struct ib_uverbs_send_wr);
				if (write(d.ctx->cmd_fd, &req, sizeof(req)) < 0)
					q[j].kicks = 0;	/* EIO once the device is gone */
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
	const char *t;

	if (argc < 3) {
		fprintf(stderr, "usage: %s DEV TEST [ARGS]\n", argv[0]);
		return 2;
	}
	dev_name = argv[1];
	t = argv[2];
	setvbuf(stdout, NULL, _IOLBF, 0);
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
