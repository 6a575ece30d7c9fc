// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * The rxe doorbell engine, through the real provider (db_qp.h): rings
 * around the idle transition, and staged sends. CPU posts go through
 * ibv_post_send(); peers post with the header-only WQE builder and ring
 * with a store; rxe_db.h forges the rest, saying why at each spot.
 *
 *   rxe_db_engine DEV stress RINGS THREADS IDLE_US [SEED]
 *	THREADS threads, each with a CPU doorbell QP (ibv_post_send(): rings
 *	and kicks when the slot asks) and a peer doorbell QP
 *	(IBV_PEER_QP_RING_BY_PEER: rings, never kicks), post and
 *	ring RINGS WQEs in all, up to 8 in flight per QP, pausing now and then
 *	for a random time around IDLE_US (the engine's db_idle_us), so that
 *	rings land just before, during and after the engine lets go of a
 *	slot. Every completion is counted and checked in order; a QP that
 *	makes no progress for 20 s is a lost ring, reported with its slot.
 *   rxe_db_engine DEV staged
 *	an IBV_PEER_QP_STAGED QP: posting and kicking send nothing,
 *	a ring releases the WQEs up to it (rung like a peer, no kick, also
 *	while the engine sleeps), spurious and invalid rings, reset.
 *
 * Prints "ok" lines; exits non-zero with "FAIL: ..." on the first failure.
 */
#include <pthread.h>

#include "rxe_db.h"

static const char *dev_name;

static void ok(const char *what)
{
	printf("ok - %s\n", what);
	fflush(stdout);
}

/* Completions on cq within ms (none expected: returns how many came). */
static int quiet_cq(struct ibv_cq *cq, int ms)
{
	struct ibv_wc wc[8];
	double end = vt_now_us() + ms * 1000.0;
	int got = 0, k;

	while (vt_now_us() < end) {
		k = ibv_poll_cq(cq, 8, wc);
		if (k < 0)
			die("poll cq");
		got += k;
		usleep(1000);
	}
	return got;
}

static void wait_idle_slot(struct db_qp *q)
{
	double end = vt_now_us() + 10e6;

	while (!(db_slot_flags(q) & RXE_DB_NEED_WAKEUP))
		if (vt_now_us() > end)
			die("qp %u: the engine never let go of the slot", q->qpn);
}

/* ---- stress ---- */

struct sq {
	struct db_qp q;
	int peer;		/* never kicks */
	uint64_t posted, done;
	double last_progress;
};

struct thr {
	pthread_t t;
	int id;
	long rings;
	unsigned int seed;
	struct vt_dev *d;
	int idle_us;
	unsigned long pauses;
};

#define STRESS_QPS	2
#define STRESS_WINDOW	8

static void stress_lost(struct thr *t, struct sq *s)
{
	int j;

	for (j = 0; j < STRESS_QPS; j++)
		fprintf(stderr, "# thread %d qp %u (%s): posted %llu done %llu prod %u cons %u slot %#x flags %#x\n",
			t->id, s[j].q.qpn, s[j].peer ? "peer" : "cpu",
			(unsigned long long)s[j].posted, (unsigned long long)s[j].done,
			db_prod(&s[j].q), *(const volatile uint32_t *)s[j].q.sq.cons_index,
			le32toh(s[j].q.slot->sq_prod), db_slot_flags(&s[j].q));
	die("thread %d: no completion for 20 s: a ring was lost", t->id);
}

static int in_flight(const struct sq *s)
{
	int j;

	for (j = 0; j < STRESS_QPS; j++)
		if (s[j].done < s[j].posted)
			return 1;
	return 0;
}

static void *stress_thread(void *arg)
{
	struct thr *t = arg;
	struct sq *s = calloc(STRESS_QPS, sizeof(*s));
	struct ibv_cq *cq = ibv_create_cq(t->d->ctx, STRESS_QPS * STRESS_WINDOW + 16,
					  NULL, NULL, 0);
	struct ibv_wc wc[16];
	long rung = 0;
	int j, k, i;

	if (!cq)
		die("thread cq");
	for (j = 0; j < STRESS_QPS; j++) {
		s[j].peer = j & 1;
		db_qp_create(t->d, &s[j].q, cq, s[j].peer ? IBV_PEER_QP_RING_BY_PEER :
			     DBQ_PLAIN);
		db_qp_connect(&s[j].q);
		s[j].last_progress = vt_now_us();
	}

	while (rung < t->rings || in_flight(s)) {
		/* ring what the window allows, a QP at a time */
		for (j = 0; j < STRESS_QPS && rung < t->rings; j++) {
			struct sq *x = &s[j];

			if (x->posted - x->done >= STRESS_WINDOW)
				continue;
			if (x->peer) {
				db_build_write(&x->q, x->posted++, 4096 + 64 * t->id,
					       65536 + 64 * t->id, 8);
				db_peer_ring(&x->q);
			} else {
				db_post_write(&x->q, x->posted++, 4096 + 64 * t->id,
					      65536 + 64 * t->id, 8);
			}
			rung++;
			/* now and then stay away for about the idle timeout */
			if (rand_r(&t->seed) % 64 == 0) {
				usleep(t->idle_us / 2 + rand_r(&t->seed) % (t->idle_us + 1));
				t->pauses++;
			}
		}
		k = ibv_poll_cq(cq, 16, wc);
		if (k < 0)
			die("poll cq");
		for (i = 0; i < k; i++) {
			for (j = 0; j < STRESS_QPS; j++)
				if (wc[i].qp_num == s[j].q.qpn)
					break;
			if (j == STRESS_QPS)
				die("completion of an unknown QP %u", wc[i].qp_num);
			if (wc[i].status != IBV_WC_SUCCESS)
				die("qp %u WQE %llu: %s", wc[i].qp_num,
				    (unsigned long long)wc[i].wr_id,
				    ibv_wc_status_str(wc[i].status));
			if (wc[i].wr_id != s[j].done)
				die("qp %u: completion %llu, expected %llu", wc[i].qp_num,
				    (unsigned long long)wc[i].wr_id,
				    (unsigned long long)s[j].done);
			s[j].done++;
			s[j].last_progress = vt_now_us();
		}
		for (j = 0; j < STRESS_QPS; j++)
			if (s[j].done < s[j].posted && vt_now_us() - s[j].last_progress > 20e6)
				stress_lost(t, s);
	}
	for (j = 0; j < STRESS_QPS; j++)
		if (db_qp_destroy(&s[j].q))
			die("destroy qp");
	ibv_destroy_cq(cq);
	free(s);
	return NULL;
}

static void t_stress(long rings, int nthr, int idle_us, unsigned int seed)
{
	struct thr *t = calloc(nthr, sizeof(*t));
	unsigned long long k0 = db_counter(dev_name, "db_syscall_kicks");
	unsigned long pauses = 0;
	double t0 = vt_now_us();
	struct vt_dev d;
	int i;

	vt_dev_open(&d, dev_name);
	for (i = 0; i < nthr; i++) {
		t[i] = (struct thr){ .id = i, .rings = rings / nthr + (i < rings % nthr),
				     .seed = seed + i, .d = &d, .idle_us = idle_us };
		pthread_create(&t[i].t, NULL, stress_thread, &t[i]);
	}
	for (i = 0; i < nthr; i++) {
		pthread_join(t[i].t, NULL);
		pauses += t[i].pauses;
	}
	printf("# %ld rings completed in %.1f s, %llu kicks, %lu pauses around %d us\n",
	       rings, (vt_now_us() - t0) / 1e6,
	       db_counter(dev_name, "db_syscall_kicks") - k0, pauses, idle_us);
	ok("every ring around the idle transition completed, in order");
	free(t);
	vt_dev_close(&d);
}

/* ---- staged ---- */

/* ibv_post_send() on a staged QP: the provider queues, never rings or kicks */
static void post_staged(struct db_qp *q, uint32_t seq)
{
	uint32_t src = 8192 + 4 * (seq % 64), dst = 16384 + 4 * (seq % 64);

	memcpy(q->v.d->buf + src, &seq, 4);
	db_post_write(q, seq, src, dst, 4);
}

static int arrived(struct db_qp *q, uint32_t seq)
{
	return !memcmp(q->v.d->buf + 16384 + 4 * (seq % 64), &seq, 4);
}

/* A peer's ring of any value: the builder's store into the doorbell. */
static void ring(struct db_qp *q, uint32_t val)
{
	rxe_peer_ring(q->sq.db, val);
}

/* forged: the provider never kicks a staged QP */
static void kick(struct db_qp *q)
{
	int err = forge_kick(q);

	if (err)
		die("kick: %s", strerror(err));
}

static void t_staged(void)
{
	struct ibv_wc wc;
	struct ibv_cq *cq;
	struct db_qp q;
	struct vt_dev d;
	uint32_t mask, i;
	unsigned long long k0;
	int err, n;

	vt_dev_open(&d, dev_name);
	cq = ibv_create_cq(d.ctx, 64, NULL, NULL, 0);
	err = db_qp_try_create(&d, &q, cq, IBV_PEER_QP_STAGED, 16);
	if (err)
		die("create a staged QP: %s", strerror(err));
	if (!q.slot || (q.sq.flags & (IBV_PEER_SQ_STAGED | IBV_PEER_SQ_RING_BY_PEER)) !=
	    (IBV_PEER_SQ_STAGED | IBV_PEER_SQ_RING_BY_PEER))
		die("a staged QP: doorbell %p, send queue flags %#x", q.sq.db, q.sq.flags);
	db_qp_connect(&q);
	mask = q.sq.wqe_cnt - 1;
	memset(d.buf + 16384, 0, 256);
	ok("a staged doorbell QP is created");

	/* posted, and kicked by hand, but not released: nothing goes */
	k0 = db_counter(dev_name, "db_syscall_kicks");
	for (i = 1; i <= 4; i++)
		post_staged(&q, i);
	if (db_counter(dev_name, "db_syscall_kicks") != k0)
		die("ibv_post_send() kicked a staged QP");
	if (le32toh(q.slot->sq_prod) != RXE_DB_IDLE)
		die("ibv_post_send() rang a staged QP: %#x", le32toh(q.slot->sq_prod));
	kick(&q);
	n = quiet_cq(cq, 300);
	if (n || arrived(&q, 1))
		die("posting and kicking sent %d staged WQEs", n);
	ok("posting and kicking release nothing");

	/* a ring releases the WQEs up to it, no more */
	ring(&q, (db_prod(&q) - 2) & mask);
	if (vt_wait_cq(cq, 2, 10000, NULL) != 2)
		die("a ring did not release its two WQEs");
	if (!arrived(&q, 2) || arrived(&q, 3))
		die("released WQEs: data of 2 %s, of 3 %s", arrived(&q, 2) ? "arrived" : "missing",
		    arrived(&q, 3) ? "arrived too early" : "not sent");
	if (quiet_cq(cq, 300))
		die("a ring released more than up to its value");
	ok("a ring releases the WQEs up to its value, no more");

	/* spurious: beyond the producer index, and an old value */
	ring(&q, (db_prod(&q) + 3) & mask);
	if (quiet_cq(cq, 300))
		die("a ring beyond the producer index released WQEs");
	ring(&q, (db_prod(&q) - 3) & mask);
	if (quiet_cq(cq, 300))
		die("an old ring released WQEs");
	ok("rings beyond the producer index or behind the release are spurious");

	/* the rest, rung by a "peer" while the engine sleeps */
	wait_idle_slot(&q);
	usleep(200000);
	db_peer_ring(&q);
	if (vt_wait_cq(cq, 2, 10000, NULL) != 2 || !arrived(&q, 4))
		die("a peer ring while the engine slept did not release the WQEs");
	ok("a peer ring without a kick releases WQEs while the engine sleeps");

	/* rings coalesce: two rings in a row release everything up to the last */
	for (i = 5; i <= 8; i++)
		post_staged(&q, i);
	ring(&q, (db_prod(&q) - 2) & mask);
	db_peer_ring(&q);
	if (vt_wait_cq(cq, 4, 10000, NULL) != 4 || !arrived(&q, 8))
		die("coalesced rings lost WQEs");
	ok("coalesced rings release up to the last one");

	/* forged: invalid; the QP errors and flushes even the unreleased WQEs */
	for (i = 9; i <= 10; i++)
		post_staged(&q, i);
	ring(&q, 0xdeadbeef);
	if (vt_wait_cq(cq, 2, 10000, &wc) != 2 || wc.status == IBV_WC_SUCCESS)
		die("an invalid ring did not flush the staged WQEs");
	if (!(db_slot_flags(&q) & RXE_DB_QP_ERROR))
		die("an invalid ring did not set RXE_DB_QP_ERROR");
	if (arrived(&q, 9))
		die("an unreleased WQE was sent");
	ok("an invalid ring errors the QP and flushes unreleased WQEs");

	db_qp_reset_connect(&q);
	if (db_slot_flags(&q) & RXE_DB_QP_ERROR)
		die("RXE_DB_QP_ERROR is still set after the reset");
	post_staged(&q, 11);
	kick(&q);
	if (quiet_cq(cq, 300))
		die("after the reset, posting released a WQE");
	db_peer_ring(&q);
	if (vt_wait_cq(cq, 1, 10000, NULL) != 1 || !arrived(&q, 11))
		die("after the reset, a ring did not release the WQE");
	ok("after a reset the flag is clear and rings release again");

	db_qp_destroy(&q);
	ibv_destroy_cq(cq);
	vt_dev_close(&d);
}

int main(int argc, char **argv)
{
	const char *t;

	if (argc < 3) {
		fprintf(stderr, "usage: %s DEV stress|staged [ARGS]\n", argv[0]);
		return 2;
	}
	dev_name = argv[1];
	t = argv[2];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(t, "stress") && argc >= 6)
		t_stress(atol(argv[3]), atoi(argv[4]), atoi(argv[5]),
			 argc >= 7 ? strtoul(argv[6], NULL, 0) : 1);
	else if (!strcmp(t, "staged"))
		t_staged();
	else
		die("unknown or incomplete command %s", t);
	return 0;
}
