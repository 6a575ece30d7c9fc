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
 *
 * Prints "ok" lines; exits non-zero with "FAIL: ..." on the first failure.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "rxe_db.h"

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
	if (q.db_offset >= (0x80000000ULL * sysconf(_SC_PAGESIZE)))
		die("doorbell offset %#llx in rxe's queue offset range",
		    (unsigned long long)q.db_offset);
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
		/* the slot is reused, reset, and works */
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
	else
		die("unknown test %s", t);
	return 0;
}
