// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * The doorbell engine: one kernel thread per rxe device that notices rings
 * in doorbell slots (rxe_doorbell.c) and drives the QPs' send path.
 *
 * It follows io_uring's SQPOLL thread. A slot is armed when the engine
 * polls it and disarmed when it does not. While any slot is armed the
 * thread busy-polls the armed slots (and only those: idle QPs cost
 * nothing). A slot that has not rung for db_idle_us is disarmed: the
 * engine sets RXE_DB_NEED_WAKEUP in it, and from then on a CPU producer
 * kicks with a system call, which arms the slot again. With no slot armed
 * the thread sleeps; if there are peer slots, whose ringers cannot make a
 * system call, it wakes every db_peer_scan_us to look at those (and only
 * those) and arms any that rang.
 *
 * Slot memory is read and written only under the engine's lock and only
 * while the QP is attached, so detaching a QP is all it takes to make the
 * engine forget its slot. The send path runs outside the lock on a QP
 * reference taken under it.
 */

#include <linux/hrtimer.h>
#include <linux/kthread.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/string.h>
#include <linux/sysfs.h>

#include "rxe.h"
#include "rxe_queue.h"

enum rxe_db_mode {
	RXE_DB_MODE_OFF,
	RXE_DB_MODE_ADAPTIVE,
	RXE_DB_MODE_ALWAYS,
};

static const char * const rxe_db_mode_names[] = {
	[RXE_DB_MODE_OFF]	= "off",
	[RXE_DB_MODE_ADAPTIVE]	= "adaptive",
	[RXE_DB_MODE_ALWAYS]	= "always",
};

static int rxe_db_mode = RXE_DB_MODE_ADAPTIVE;
static unsigned int rxe_db_idle_us = 2000;
static unsigned int rxe_db_peer_scan_us = 1000;
static bool rxe_db_inline = true;

#define RXE_DB_PEER_SCAN_MIN_US	10
#define RXE_DB_PEER_SCAN_MAX_US	USEC_PER_SEC
/* rings served per pass, so that the lock is never held for long */
#define RXE_DB_BATCH		16

struct rxe_db_engine {
	struct rxe_dev		*rxe;
	struct task_struct	*thread;
	struct list_head	list;		/* in rxe_db_engines */

	spinlock_t		lock;		/* guards all below */
	struct list_head	active;		/* armed slots */
	struct list_head	peers;		/* peer slots, armed or not */
	unsigned int		nr_peers;
	bool			sleeping;	/* in rxe_db_sleep(), may schedule */
	bool			polling;	/* for the wakeup/sleep counters */
};

struct rxe_db_ring {
	struct rxe_qp		*qp;
	u32			val;
	bool			invalid;
};

/* All engines, so that a change of mode reaches sleeping threads. */
static DEFINE_MUTEX(rxe_db_engines_lock);
static LIST_HEAD(rxe_db_engines);

static void rxe_db_engines_wake(void)
{
	struct rxe_db_engine *e;

	mutex_lock(&rxe_db_engines_lock);
	list_for_each_entry(e, &rxe_db_engines, list)
		wake_up_process(e->thread);
	mutex_unlock(&rxe_db_engines_lock);
}

static int rxe_db_mode_set(const char *val, const struct kernel_param *kp)
{
	int mode = sysfs_match_string(rxe_db_mode_names, val);

	if (mode < 0)
		return mode;
	WRITE_ONCE(rxe_db_mode, mode);
	rxe_db_engines_wake();
	return 0;
}

static int rxe_db_mode_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%s\n", rxe_db_mode_names[READ_ONCE(rxe_db_mode)]);
}

static const struct kernel_param_ops rxe_db_mode_ops = {
	.set = rxe_db_mode_set,
	.get = rxe_db_mode_get,
};

module_param_cb(db_mode, &rxe_db_mode_ops, NULL, 0644);
MODULE_PARM_DESC(db_mode,
		 "Doorbell engine: off (every ring needs a system call), adaptive (poll while rings come, sleep after db_idle_us), always (never stop polling a slot once rung) [adaptive]");
module_param_named(db_idle_us, rxe_db_idle_us, uint, 0644);
MODULE_PARM_DESC(db_idle_us,
		 "Microseconds without a ring after which the engine stops polling a slot and asks for a system call kick [2000]");
module_param_named(db_peer_scan_us, rxe_db_peer_scan_us, uint, 0644);
MODULE_PARM_DESC(db_peer_scan_us,
		 "Interval in microseconds at which a sleeping engine scans the slots of peers that cannot make a system call, 10..1000000 [1000]");
module_param_named(db_inline, rxe_db_inline, bool, 0644);
MODULE_PARM_DESC(db_inline,
		 "Run the send path in the engine thread (Y) or queue it to rxe_wq (N) [Y]");

static void rxe_db_set_uflags(struct rxe_qp_db *db, u32 uflags)
{
	db->uflags = uflags;
	WRITE_ONCE(db->slot->flags, cpu_to_le32(uflags));
}

/*
 * Take the pending ring out of a slot, leaving RXE_DB_IDLE. Rings between
 * two looks coalesce, which is harmless because the queue, not the slot,
 * says what there is to send; none is lost, because a producer's store
 * either lands before our exchange (we return it) or after (next look).
 */
static u32 rxe_db_consume(struct rxe_db_slot *slot)
{
	const __le32 idle = cpu_to_le32(RXE_DB_IDLE);
	__le32 val = READ_ONCE(slot->sq_prod);
	__le32 old;

	while (val != idle) {
		old = cmpxchg(&slot->sq_prod, val, idle);
		if (old == val)
			break;
		val = old;
	}
	return le32_to_cpu(val);
}

static void rxe_db_arm(struct rxe_db_engine *e, struct rxe_qp_db *db,
		       ktime_t now)
{
	lockdep_assert_held(&e->lock);

	if (db->armed)
		return;
	db->armed = true;
	db->last_ring = now;
	list_add_tail(&db->active, &e->active);
	/*
	 * No barrier: a producer that still sees the flag kicks once more
	 * than needed, which only costs it a system call.
	 */
	rxe_db_set_uflags(db, db->uflags & ~RXE_DB_NEED_WAKEUP);
}

/* Stop polling an idle slot, unless it rang after all. */
static u32 rxe_db_disarm(struct rxe_db_engine *e, struct rxe_qp_db *db)
{
	u32 val;

	lockdep_assert_held(&e->lock);

	rxe_db_set_uflags(db, db->uflags | RXE_DB_NEED_WAKEUP);
	/*
	 * Pairs with the full barrier a producer issues between its store to
	 * sq_prod and its load of flags (see struct rxe_db_slot): either the
	 * producer sees RXE_DB_NEED_WAKEUP and kicks, or we see its ring now.
	 */
	smp_mb();
	val = rxe_db_consume(db->slot);
	if (val != RXE_DB_IDLE) {
		rxe_db_set_uflags(db, db->uflags & ~RXE_DB_NEED_WAKEUP);
		return val;
	}

	list_del_init(&db->active);
	db->armed = false;
	return RXE_DB_IDLE;
}

static void rxe_db_disarm_all(struct rxe_db_engine *e)
{
	struct rxe_qp_db *db, *tmp;

	spin_lock(&e->lock);
	list_for_each_entry_safe(db, tmp, &e->active, active) {
		rxe_db_set_uflags(db, db->uflags | RXE_DB_NEED_WAKEUP);
		list_del_init(&db->active);
		db->armed = false;
	}
	spin_unlock(&e->lock);
}

/* Arm the peer slots that rang; the next pass consumes the rings. */
static void rxe_db_peer_scan(struct rxe_db_engine *e, ktime_t now)
{
	struct rxe_qp_db *db;

	spin_lock(&e->lock);
	list_for_each_entry(db, &e->peers, peer) {
		if (!db->armed &&
		    READ_ONCE(db->slot->sq_prod) != cpu_to_le32(RXE_DB_IDLE))
			rxe_db_arm(e, db, now);
	}
	spin_unlock(&e->lock);
}

static void rxe_db_qp_fatal(struct rxe_qp *qp)
{
	struct ib_event ev = {
		.device		= qp->ibqp.device,
		.element.qp	= &qp->ibqp,
		.event		= IB_EVENT_QP_FATAL,
	};

	if (qp_state(qp) == IB_QPS_ERR)
		return;
	rxe_qp_error(qp);
	if (qp->ibqp.event_handler)
		qp->ibqp.event_handler(&ev, qp->ibqp.qp_context);
}

/* Act on one ring; the caller holds a reference on the QP. */
static void rxe_db_ring(struct rxe_dev *rxe, const struct rxe_db_ring *ring)
{
	struct rxe_qp *qp = ring->qp;
	struct rxe_queue *q = qp->sq.queue;
	u32 prod;

	rxe_counter_inc(rxe, RXE_CNT_DB_RINGS);

	if (ring->invalid) {
		rxe_counter_inc(rxe, RXE_CNT_DB_INVALID);
		rxe_dbg_qp(qp, "invalid doorbell value %#x (index mask %#x)\n",
			   ring->val, q->index_mask);
		rxe_db_qp_fatal(qp);
		return;
	}

	/* The truth is the queue: the ring only says "look". */
	prod = queue_get_producer(q, QUEUE_TYPE_FROM_CLIENT) & q->index_mask;
	if (prod != ring->val || qp_state(qp) < IB_QPS_RTS) {
		rxe_counter_inc(rxe, RXE_CNT_DB_SPURIOUS);
		if (qp_state(qp) < IB_QPS_RTS)
			return;
	}

	if (READ_ONCE(rxe_db_inline))
		rxe_run_task(&qp->send_task);
	else
		rxe_sched_task(&qp->send_task);
}

/* One look at every armed slot. Returns true if any rang. */
static bool rxe_db_pass(struct rxe_db_engine *e, int mode, ktime_t now)
{
	s64 idle_ns = (s64)READ_ONCE(rxe_db_idle_us) * NSEC_PER_USEC;
	struct rxe_db_ring rings[RXE_DB_BATCH];
	struct rxe_qp_db *db, *tmp;
	unsigned int n = 0, i;
	struct rxe_db_ring *r;
	u32 val;

	spin_lock(&e->lock);
	list_for_each_entry_safe(db, tmp, &e->active, active) {
		val = rxe_db_consume(db->slot);
		if (val == RXE_DB_IDLE) {
			if (mode != RXE_DB_MODE_ADAPTIVE ||
			    ktime_to_ns(ktime_sub(now, db->last_ring)) < idle_ns)
				continue;
			val = rxe_db_disarm(e, db);
			if (val == RXE_DB_IDLE)
				continue;
		}
		db->last_ring = now;

		/* A QP being destroyed still holds its slot: skip it. */
		if (!rxe_get(db->qp))
			continue;
		r = &rings[n++];
		r->qp = db->qp;
		r->val = val;
		/* The index mask is the kernel's own copy, not the user's. */
		r->invalid = val > db->qp->sq.queue->index_mask;
		if (r->invalid)
			rxe_db_set_uflags(db, db->uflags | RXE_DB_QP_ERROR);

		if (n == RXE_DB_BATCH) {
			/* Serve the slots after this one first next time. */
			if (&tmp->active != &e->active)
				list_rotate_to_front(&tmp->active, &e->active);
			break;
		}
	}
	spin_unlock(&e->lock);

	for (i = 0; i < n; i++) {
		rxe_db_ring(e->rxe, &rings[i]);
		rxe_put(rings[i].qp);
	}
	return n;
}

/* Sleep until a kick arms a slot, or for one peer scan interval. */
static void rxe_db_sleep(struct rxe_db_engine *e, int mode)
{
	unsigned int scan_us;
	bool timed, woken;
	ktime_t expires;

	set_current_state(TASK_INTERRUPTIBLE);
	spin_lock(&e->lock);
	/*
	 * Checked after setting our state and under the lock that kicks arm
	 * slots under: a kick either is seen here or finds sleeping set and
	 * wakes us, making schedule() return at once.
	 */
	if (!list_empty(&e->active) || kthread_should_stop()) {
		spin_unlock(&e->lock);
		__set_current_state(TASK_RUNNING);
		return;
	}
	e->sleeping = true;
	timed = mode != RXE_DB_MODE_OFF && e->nr_peers;
	if (e->polling) {
		e->polling = false;
		rxe_counter_inc(e->rxe, RXE_CNT_DB_ENGINE_SLEEPS);
	}
	spin_unlock(&e->lock);

	if (timed) {
		scan_us = clamp(READ_ONCE(rxe_db_peer_scan_us),
				RXE_DB_PEER_SCAN_MIN_US, RXE_DB_PEER_SCAN_MAX_US);
		expires = us_to_ktime(scan_us);
		schedule_hrtimeout_range(&expires, scan_us * NSEC_PER_USEC / 8,
					 HRTIMER_MODE_REL);
	} else {
		schedule();
	}
	__set_current_state(TASK_RUNNING);

	spin_lock(&e->lock);
	e->sleeping = false;
	woken = !list_empty(&e->active);
	spin_unlock(&e->lock);
	if (woken) {
		e->polling = true;
		rxe_counter_inc(e->rxe, RXE_CNT_DB_ENGINE_WAKEUPS);
	}
}

static int rxe_db_engine_thread(void *arg)
{
	struct rxe_db_engine *e = arg;
	ktime_t next_scan = 0, now;
	unsigned int scan_us;
	int mode;

	while (!kthread_should_stop()) {
		mode = READ_ONCE(rxe_db_mode);
		now = ktime_get();

		if (mode == RXE_DB_MODE_OFF) {
			rxe_db_disarm_all(e);
		} else if (ktime_after(now, next_scan)) {
			rxe_db_peer_scan(e, now);
			scan_us = clamp(READ_ONCE(rxe_db_peer_scan_us),
					RXE_DB_PEER_SCAN_MIN_US,
					RXE_DB_PEER_SCAN_MAX_US);
			next_scan = ktime_add_us(now, scan_us);
		}

		if (rxe_db_pass(e, mode, now)) {
			cond_resched();
			continue;
		}

		if (!list_empty_careful(&e->active)) {
			cpu_relax();
			cond_resched();
			continue;
		}

		rxe_db_sleep(e, mode);
	}
	return 0;
}

static struct rxe_db_engine *rxe_db_engine_get(struct rxe_dev *rxe)
{
	struct rxe_db_engine *e;
	int err;

	mutex_lock(&rxe_db_engines_lock);
	e = rxe->db_engine;
	if (e)
		goto out;

	e = kzalloc_obj(*e);
	if (!e) {
		e = ERR_PTR(-ENOMEM);
		goto out;
	}
	e->rxe = rxe;
	spin_lock_init(&e->lock);
	INIT_LIST_HEAD(&e->active);
	INIT_LIST_HEAD(&e->peers);

	e->thread = kthread_run(rxe_db_engine_thread, e, "rxe_db/%s",
				dev_name(&rxe->ib_dev.dev));
	if (IS_ERR(e->thread)) {
		err = PTR_ERR(e->thread);
		kfree(e);
		e = ERR_PTR(err);
		goto out;
	}
	list_add(&e->list, &rxe_db_engines);
	rxe->db_engine = e;
out:
	mutex_unlock(&rxe_db_engines_lock);
	return e;
}

/**
 * rxe_db_engine_attach - let the engine see a QP's doorbell slot
 * @qp: a QP that has just been given qp->db
 *
 * Starts the device's engine on first use. The slot starts disarmed, so
 * the first ring of a CPU producer is a kick; a peer slot is scanned from
 * now on.
 *
 * Return: 0 or a negative errno.
 */
int rxe_db_engine_attach(struct rxe_qp *qp)
{
	struct rxe_qp_db *db = qp->db;
	struct rxe_db_engine *e;
	bool wake;

	e = rxe_db_engine_get(to_rdev(qp->ibqp.device));
	if (IS_ERR(e))
		return PTR_ERR(e);

	if (!(db->flags & RXE_CREATE_QP_DOORBELL_PEER))
		return 0;

	spin_lock(&e->lock);
	list_add_tail(&db->peer, &e->peers);
	e->nr_peers++;
	wake = e->sleeping;
	spin_unlock(&e->lock);
	/* An untimed sleep has to become a timed one. */
	if (wake)
		wake_up_process(e->thread);
	return 0;
}

/**
 * rxe_db_engine_detach - make the engine forget a QP's doorbell slot
 * @qp: a QP being destroyed
 *
 * Once this returns the engine neither reads nor writes the slot, so it can
 * be reset and reused. A send path the engine started for the QP may still
 * be running; it holds a QP reference, which the QP's cleanup waits for.
 */
void rxe_db_engine_detach(struct rxe_qp *qp)
{
	struct rxe_db_engine *e = to_rdev(qp->ibqp.device)->db_engine;
	struct rxe_qp_db *db = qp->db;

	spin_lock(&e->lock);
	if (db->armed) {
		list_del_init(&db->active);
		db->armed = false;
	}
	if (!list_empty(&db->peer)) {
		list_del_init(&db->peer);
		e->nr_peers--;
	}
	spin_unlock(&e->lock);
}

/**
 * rxe_db_kick - a system call kick for a doorbell QP
 * @qp: the QP that user space posted an empty send to
 *
 * A producer kicks when it read RXE_DB_NEED_WAKEUP after ringing: arm the
 * slot and wake the engine if it sleeps. The caller still schedules the
 * send path, so a kick is never worse than the kick without doorbells.
 */
void rxe_db_kick(struct rxe_qp *qp)
{
	struct rxe_dev *rxe = to_rdev(qp->ibqp.device);
	struct rxe_qp_db *db = qp->db;
	struct rxe_db_engine *e;
	bool wake;

	if (!db)
		return;

	rxe_counter_inc(rxe, RXE_CNT_DB_KICKS);
	if (READ_ONCE(rxe_db_mode) == RXE_DB_MODE_OFF)
		return;

	e = rxe->db_engine;
	spin_lock(&e->lock);
	rxe_db_arm(e, db, ktime_get());
	wake = e->sleeping;
	spin_unlock(&e->lock);
	if (wake)
		wake_up_process(e->thread);
}

/**
 * rxe_db_engine_destroy - stop a device's engine
 * @rxe: the device being deallocated
 *
 * All QPs, and so all slots, are gone by now.
 */
void rxe_db_engine_destroy(struct rxe_dev *rxe)
{
	struct rxe_db_engine *e;

	mutex_lock(&rxe_db_engines_lock);
	e = rxe->db_engine;
	if (e) {
		list_del(&e->list);
		rxe->db_engine = NULL;
	}
	mutex_unlock(&rxe_db_engines_lock);
	if (!e)
		return;

	WARN_ON(!list_empty(&e->active) || !list_empty(&e->peers));
	kthread_stop(e->thread);
	kfree(e);
}
