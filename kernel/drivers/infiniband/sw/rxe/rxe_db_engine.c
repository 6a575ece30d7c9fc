// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * The doorbell engine: a kernel thread that notices rings in doorbell slots
 * (rxe_doorbell.c) and runs the QPs' send path. It follows io_uring's
 * SQPOLL thread.
 *
 * Slot states (enum rxe_db_slot_state, struct rxe_qp_db.state):
 *
 *   IDLE  -- a kick, or the peer scan finds a ring ------------> ARMED
 *   ARMED -- db_idle_us without a ring (adaptive), db_mode=off --> IDLE
 *   any   -- the QP is destroyed ------------------------------> DETACHED
 *
 * An ARMED slot is on the engine's armed list, which the thread polls, and
 * RXE_DB_NEED_WAKEUP is clear in it, so a CPU producer does not kick. An
 * IDLE slot has RXE_DB_NEED_WAKEUP set: a CPU producer kicks after ringing
 * it, and a peer slot (which a device that cannot kick rings) is looked at
 * by the peer scan, a timer that looks at every peer slot once per
 * db_peer_scan_us whether the thread runs or sleeps. Idle QPs are on no
 * poll list and cost the thread nothing.
 *
 * Thread phases (enum rxe_db_phase, struct rxe_db_engine.phase):
 *
 *   SPIN   a ring came less than db_spin_us ago and nothing else wants the
 *          CPU: look again at once
 *   POLL   slots are armed but rang longer ago, or another task is
 *          runnable here: look every db_poll_us; in the second case CPU
 *          producers are told to kick for db_idle_us, see
 *          rxe_db_thread_yield()
 *   SLEEP  no slot armed: sleep until a kick or the peer scan arms one
 *
 * The thread runs the send path of a ring itself (db_inline): the QP's send
 * task, then the tasks that it causes on the engine's devices (the
 * responder of a loopback peer, the completer when the acknowledgment
 * comes back), one after the other; a kick while the thread yields runs
 * the same in the caller if that QP has no other WQE in flight. See
 * rxe_db_engine_defer() for why and for the bound.
 *
 * Slot memory is read and written only under the engine's lock and only
 * while the QP is attached, so detaching a QP is all it takes to make the
 * engine forget its slot. The send path runs outside the lock on a QP
 * reference taken under it.
 */

#include <linux/delay.h>
#include <linux/hrtimer.h>
#include <linux/kthread.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/sched/stat.h>
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

enum rxe_db_phase {
	RXE_DB_SPIN,
	RXE_DB_POLL,
	RXE_DB_SLEEP,
};

static int rxe_db_mode = RXE_DB_MODE_ADAPTIVE;
static unsigned int rxe_db_idle_us = 2000;
static unsigned int rxe_db_peer_scan_us = 1000;
static unsigned int rxe_db_spin_us = 50;
static unsigned int rxe_db_poll_us = 10;
static bool rxe_db_inline = true;
static bool rxe_db_shared;

#define RXE_DB_PEER_SCAN_MIN_US	10
#define RXE_DB_PEER_SCAN_MAX_US	USEC_PER_SEC
#define RXE_DB_POLL_MAX_US	USEC_PER_MSEC
/* slots looked at per hold of the engine's lock */
#define RXE_DB_SCAN		32
/* rings taken out of their slots per pass */
#define RXE_DB_BATCH		16
/* task runs per pass in the engine thread; rxe_wq runs the rest */
#define RXE_DB_CHAIN		16

struct rxe_db_engine {
	struct task_struct	*thread;
	struct list_head	list;		/* in rxe_db_engines */
	unsigned int		users;		/* devices, under rxe_db_engines_lock */

	/*
	 * Guards the lists, the counts and the slot states, and the slots'
	 * memory. A _bh lock: the peer timer takes it in softirq context.
	 */
	spinlock_t		lock;
	struct list_head	armed;		/* ARMED slots, polled */
	struct list_head	peers;		/* attached peer slots, IDLE or ARMED */
	unsigned int		nr_peers;
	/* the device whose slot went IDLE last, for the sleep counter */
	struct rxe_dev		*idle_dev;
	/*
	 * Written by the thread only. It enters and leaves RXE_DB_SLEEP under
	 * the lock, and others only ask, under the lock, whether it sleeps.
	 */
	enum rxe_db_phase	phase;

	/* the peer scan, while peer slots exist and db_mode is not off */
	bool			peer_timer_on;	/* under the lock */
	struct hrtimer		peer_timer;

	/*
	 * Until then a kick does not arm its slot: the thread gave its CPU
	 * up to other tasks (rxe_db_thread_yield()), and rings cost less as
	 * kicks than waiting for a CPU. Under the lock.
	 */
	ktime_t			kick_only_until;

	/*
	 * The chains being run, by the thread and by kicks, each owned by
	 * its task (rxe_db_chain_begin()). The lock is a plain one: chains
	 * are looked up in task context only.
	 */
	spinlock_t		chain_lock;
	struct list_head	chains;

	/* the engine thread only */
	ktime_t			last_ring;
};

/* A ring taken out of its slot, to be served outside the lock. */
struct rxe_db_ring {
	struct rxe_qp		*qp;		/* referenced */
	u32			val;
	enum {
		RXE_DB_RING_RUN,		/* run the send path */
		RXE_DB_RING_SPURIOUS,		/* nothing for it in the queue */
		RXE_DB_RING_INVALID,		/* out of range: QP moved to error */
	} verdict;
	bool			fatal;		/* raise IB_EVENT_QP_FATAL */
};

/*
 * The tasks a ring's send path caused in its owner's call chain, see
 * rxe_db_engine_defer(). Lives on the owner's stack; only the owner adds
 * to it.
 */
struct rxe_db_chain {
	struct list_head	node;		/* in rxe_db_engine.chains */
	struct task_struct	*owner;
	struct rxe_task		*task[RXE_DB_CHAIN];	/* QPs referenced */
	unsigned int		n;
};

/* All engines, so that a change of mode reaches sleeping threads. */
static DEFINE_MUTEX(rxe_db_engines_lock);
static LIST_HEAD(rxe_db_engines);
/* the engine of every device with db_shared (under rxe_db_engines_lock) */
static struct rxe_db_engine *rxe_db_shared_engine;

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
		 "Microseconds without a ring after which the engine stops polling a slot and asks for a system call kick; also how long CPU producers kick after the engine yielded its CPU to other tasks [2000]");
module_param_named(db_peer_scan_us, rxe_db_peer_scan_us, uint, 0644);
MODULE_PARM_DESC(db_peer_scan_us,
		 "Interval in microseconds at which the engine scans the idle slots of peers that cannot make a system call, 10..1000000 [1000]");
module_param_named(db_spin_us, rxe_db_spin_us, uint, 0644);
MODULE_PARM_DESC(db_spin_us,
		 "Microseconds the adaptive engine busy-polls after the last ring; after that it looks every db_poll_us until db_idle_us [50]");
module_param_named(db_poll_us, rxe_db_poll_us, uint, 0644);
MODULE_PARM_DESC(db_poll_us,
		 "Interval in microseconds of the engine's looks between db_spin_us and db_idle_us, 1..1000 [10]");
module_param_named(db_inline, rxe_db_inline, bool, 0644);
MODULE_PARM_DESC(db_inline,
		 "Run a ring's send path, and the tasks it causes on the engine's devices, in the engine thread, and a kick's in the caller while the engine yields and it is the QP's only WQE in flight (Y), or queue all of it to rxe_wq (N) [Y]");
module_param_named(db_shared, rxe_db_shared, bool, 0444);
MODULE_PARM_DESC(db_shared,
		 "One engine thread for all rxe devices (Y) instead of one per device (N) [N]");

static void rxe_db_set_uflags(struct rxe_qp_db *db, u32 uflags)
{
	db->uflags = uflags;
	WRITE_ONCE(db->slot->flags, cpu_to_le32(uflags));
}

/*
 * Take the pending ring out of a slot, leaving RXE_DB_IDLE. Rings between
 * two looks coalesce, which is harmless because the queue says what there
 * is to send (on a staged QP the latest ring releases everything before
 * it too); none is lost, because a producer's store either lands before
 * the exchange (we return it) or after it (the next look sees it).
 */
static u32 rxe_db_take(struct rxe_db_slot *slot)
{
	const __le32 idle = cpu_to_le32(RXE_DB_IDLE);

	/* a plain look first: an idle slot's cache line stays shared */
	if (READ_ONCE(slot->sq_prod) == idle)
		return RXE_DB_IDLE;
	return le32_to_cpu(xchg(&slot->sq_prod, idle));
}

static void rxe_db_arm(struct rxe_db_engine *e, struct rxe_qp_db *db,
		       ktime_t now)
{
	lockdep_assert_held(&e->lock);

	if (db->state != RXE_DB_SLOT_IDLE)
		return;
	db->state = RXE_DB_SLOT_ARMED;
	db->last_ring = now;
	list_add_tail(&db->armed, &e->armed);
	/*
	 * No barrier: a producer that still sees the flag kicks once more
	 * than needed, which only costs it a system call.
	 */
	rxe_db_set_uflags(db, db->uflags & ~RXE_DB_NEED_WAKEUP);
}

/*
 * Stop polling a slot. Returns the ring that came after all, in which
 * case the slot stays armed, or RXE_DB_IDLE.
 */
static u32 rxe_db_disarm(struct rxe_db_engine *e, struct rxe_qp_db *db)
{
	u32 val;

	lockdep_assert_held(&e->lock);

	rxe_db_set_uflags(db, db->uflags | RXE_DB_NEED_WAKEUP);
	/*
	 * Pairs with the producer's full barrier between its store to sq_prod
	 * and its load of flags (ring step 3 in struct rxe_db_slot; the rxe
	 * provider's doorbell): either the producer sees RXE_DB_NEED_WAKEUP
	 * and kicks, or we see its ring now.
	 */
	smp_mb();
	val = rxe_db_take(db->slot);
	if (val != RXE_DB_IDLE) {
		rxe_db_set_uflags(db, db->uflags & ~RXE_DB_NEED_WAKEUP);
		return val;
	}

	list_del_init(&db->armed);
	db->state = RXE_DB_SLOT_IDLE;
	e->idle_dev = to_rdev(db->qp->ibqp.device);
	return RXE_DB_IDLE;
}

/*
 * Judge a ring against the QP, under the engine's lock while the QP is
 * attached. Fills @r and returns true if it holds a QP reference to serve.
 *
 * - above the send queue's index mask (the kernel's own copy): invalid, the
 *   QP (only it) goes to the error state and RXE_DB_QP_ERROR is set; done
 *   here, under the lock that rxe_db_qp_modified() clears the flag under,
 *   so that the flag and the QP state never disagree;
 * - before RTS: spurious;
 * - staged QP: the ring releases the WQEs up to it if it lies in (last
 *   released, producer index], else it is spurious;
 * - otherwise spurious if it lies outside the posted part of the queue
 *   [consumer index, producer index]; the send path runs either way.
 */
static bool rxe_db_judge(struct rxe_qp_db *db, u32 val, struct rxe_db_ring *r)
{
	struct rxe_qp *qp = db->qp;
	struct rxe_queue *q = qp->sq.queue;
	u32 mask = q->index_mask, prod, from;

	if (!rxe_get(qp))
		return false;	/* being destroyed: drop the ring */
	r->qp = qp;
	r->val = val;
	r->fatal = false;

	if (val > mask) {
		r->verdict = RXE_DB_RING_INVALID;
		rxe_db_set_uflags(db, db->uflags | RXE_DB_QP_ERROR);
		if (qp_state(qp) != IB_QPS_ERR) {
			rxe_qp_error(qp);
			r->fatal = true;
		}
		return true;
	}

	r->verdict = RXE_DB_RING_SPURIOUS;
	if (qp_state(qp) < IB_QPS_RTS)
		return true;

	/* acquire: the WQEs before the producer index are complete */
	prod = queue_get_producer(q, QUEUE_TYPE_FROM_CLIENT) & mask;
	if (qp->sq_staged) {
		from = qp->sq_released;
		if (((val - from) & mask) - 1 >= ((prod - from) & mask))
			return true;
		/*
		 * Pairs with the smp_load_acquire() of sq_released in the
		 * requester (rxe_req.c): it sends the WQEs up to val, which the
		 * acquire of the producer index above made complete.
		 */
		smp_store_release(&qp->sq_released, val);
	} else {
		from = queue_get_consumer(q, QUEUE_TYPE_FROM_CLIENT) & mask;
		if (((val - from) & mask) > ((prod - from) & mask))
			return true;
	}
	r->verdict = RXE_DB_RING_RUN;
	return true;
}

/*
 * Count a judged ring and raise the event of an invalid one, outside the
 * lock. Returns true if the send path should run.
 */
static bool rxe_db_account(const struct rxe_db_ring *r)
{
	struct ib_event ev = { .event = IB_EVENT_QP_FATAL };
	struct rxe_qp *qp = r->qp;
	struct rxe_dev *rxe = to_rdev(qp->ibqp.device);

	rxe_counter_inc(rxe, RXE_CNT_DB_RINGS);
	switch (r->verdict) {
	case RXE_DB_RING_INVALID:
		rxe_counter_inc(rxe, RXE_CNT_DB_INVALID);
		rxe_dbg_qp(qp, "invalid doorbell value %#x (index mask %#x)\n",
			   r->val, qp->sq.queue->index_mask);
		if (r->fatal && qp->ibqp.event_handler) {
			ev.device = qp->ibqp.device;
			ev.element.qp = &qp->ibqp;
			qp->ibqp.event_handler(&ev, qp->ibqp.qp_context);
		}
		return false;
	case RXE_DB_RING_SPURIOUS:
		rxe_counter_inc(rxe, RXE_CNT_DB_SPURIOUS);
		/* harmless: the send path reads the queue, not the ring */
		return qp_state(qp) >= IB_QPS_RTS;
	case RXE_DB_RING_RUN:
		break;
	}
	return true;
}

/*
 * From now on, the tasks that the calling task causes on @e's devices are
 * collected in @chain instead of being queued to rxe_wq, see
 * rxe_db_engine_defer(). With db_inline=N nothing is collected.
 */
static void rxe_db_chain_begin(struct rxe_db_engine *e,
			       struct rxe_db_chain *chain)
{
	chain->owner = current;
	chain->n = 0;
	INIT_LIST_HEAD(&chain->node);
	if (!READ_ONCE(rxe_db_inline))
		return;
	spin_lock(&e->chain_lock);
	list_add(&chain->node, &e->chains);
	spin_unlock(&e->chain_lock);
}

/*
 * Run the tasks @chain collected, one after the other and with no lock
 * held; each may add more, up to RXE_DB_CHAIN. Then stop collecting: no
 * task of ours runs any more, so nothing is added after the loop.
 */
static void rxe_db_chain_end(struct rxe_db_engine *e,
			     struct rxe_db_chain *chain)
{
	unsigned int i;

	for (i = 0; i < chain->n; i++) {
		rxe_run_task(chain->task[i]);
		rxe_put(chain->task[i]->qp);
	}
	if (list_empty(&chain->node))
		return;
	spin_lock(&e->chain_lock);
	list_del(&chain->node);
	spin_unlock(&e->chain_lock);
}

/*
 * Serve judged rings outside the lock, between rxe_db_chain_begin() and
 * rxe_db_chain_end(): rxe_sched_task() hands the send tasks to the chain.
 */
static void rxe_db_serve(struct rxe_db_ring *rings, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (rxe_db_account(&rings[i]))
			rxe_sched_task(&rings[i].qp->send_task);
		rxe_put(rings[i].qp);
	}
}

static u64 rxe_db_peer_period_ns(unsigned int nr_peers)
{
	unsigned int us = clamp(READ_ONCE(rxe_db_peer_scan_us),
				RXE_DB_PEER_SCAN_MIN_US, RXE_DB_PEER_SCAN_MAX_US);

	return (u64)us * NSEC_PER_USEC / DIV_ROUND_UP(nr_peers, RXE_DB_SCAN);
}

/*
 * The peer scan is a timer rather than the thread, so that idle peer slots
 * cost a timer softirq per interval, not two context switches. Each run
 * looks at the next RXE_DB_SCAN peer slots (the list is rotated) and the
 * period is divided accordingly: every peer slot is looked at once per
 * db_peer_scan_us. Slots that rang are armed, and the thread woken if it
 * sleeps; its next pass takes the rings.
 */
static enum hrtimer_restart rxe_db_peer_timer(struct hrtimer *timer)
{
	struct rxe_db_engine *e = container_of(timer, struct rxe_db_engine,
					       peer_timer);
	const __le32 idle = cpu_to_le32(RXE_DB_IDLE);
	ktime_t now = ktime_get();
	unsigned int seen = 0;
	struct rxe_qp_db *db;
	bool wake = false;
	u64 period;

	spin_lock(&e->lock);
	if (!e->nr_peers || READ_ONCE(rxe_db_mode) == RXE_DB_MODE_OFF) {
		e->peer_timer_on = false;
		spin_unlock(&e->lock);
		return HRTIMER_NORESTART;
	}
	list_for_each_entry(db, &e->peers, peer) {
		if (seen++ == RXE_DB_SCAN)
			break;
		if (db->state == RXE_DB_SLOT_IDLE &&
		    READ_ONCE(db->slot->sq_prod) != idle) {
			rxe_db_arm(e, db, now);
			wake = e->phase == RXE_DB_SLEEP;
		}
	}
	/* the next run goes on from here */
	if (&db->peer != &e->peers)
		list_rotate_to_front(&db->peer, &e->peers);
	period = rxe_db_peer_period_ns(e->nr_peers);
	spin_unlock(&e->lock);

	if (wake)
		wake_up_process(e->thread);
	hrtimer_forward_now(timer, ns_to_ktime(period));
	return HRTIMER_RESTART;
}

/* Start the peer scan if it is needed and not running. */
static void rxe_db_peer_timer_start(struct rxe_db_engine *e)
{
	u64 period;

	lockdep_assert_held(&e->lock);

	if (e->peer_timer_on || !e->nr_peers ||
	    READ_ONCE(rxe_db_mode) == RXE_DB_MODE_OFF)
		return;
	e->peer_timer_on = true;
	period = rxe_db_peer_period_ns(e->nr_peers);
	hrtimer_start_range_ns(&e->peer_timer, ns_to_ktime(period), period / 8,
			       HRTIMER_MODE_REL_SOFT);
}

/*
 * One bounded look at the armed slots: at most RXE_DB_SCAN of them under
 * the lock, from where the last pass stopped, taking out and judging up to
 * RXE_DB_BATCH rings. Slots that stayed quiet for db_idle_us (adaptive),
 * or all slots (off), are disarmed, and so are the quiet slots of CPU
 * producers while the thread yields (rxe_db_thread_yield()). Returns the
 * number of rings.
 */
static unsigned int rxe_db_pass(struct rxe_db_engine *e, int mode,
				ktime_t now, struct rxe_db_ring *rings)
{
	s64 idle_ns = (s64)READ_ONCE(rxe_db_idle_us) * NSEC_PER_USEC;
	unsigned int n = 0, seen = 0;
	struct rxe_qp_db *db, *tmp;
	bool kick_only, quiet, yield;
	u32 val;

	spin_lock_bh(&e->lock);
	kick_only = ktime_before(now, e->kick_only_until);
	/* after db_mode=off, or if the timer found nothing to do */
	rxe_db_peer_timer_start(e);
	list_for_each_entry_safe(db, tmp, &e->armed, armed) {
		if (seen++ == RXE_DB_SCAN || n == RXE_DB_BATCH) {
			/* the next pass starts with this slot */
			list_rotate_to_front(&db->armed, &e->armed);
			break;
		}
		val = rxe_db_take(db->slot);
		if (val == RXE_DB_IDLE) {
			quiet = ktime_to_ns(ktime_sub(now, db->last_ring)) >=
				idle_ns;
			/* a CPU producer rings for less as a kick, see _yield() */
			yield = kick_only &&
				!(db->flags & RXE_CREATE_QP_DOORBELL_PEER);
			if (mode == RXE_DB_MODE_ALWAYS ||
			    (mode == RXE_DB_MODE_ADAPTIVE && !quiet && !yield))
				continue;
			val = rxe_db_disarm(e, db);
			if (val == RXE_DB_IDLE) {
				if (mode == RXE_DB_MODE_ADAPTIVE && !quiet)
					rxe_counter_inc(to_rdev(db->qp->ibqp.device),
							RXE_CNT_DB_YIELDS);
				continue;
			}
		}
		db->last_ring = now;
		if (rxe_db_judge(db, val, &rings[n]))
			n++;
	}
	spin_unlock_bh(&e->lock);
	return n;
}

/* Sleep until a kick, or the peer scan, arms a slot. */
static void rxe_db_sleep(struct rxe_db_engine *e)
{
	struct rxe_qp_db *first;

	set_current_state(TASK_INTERRUPTIBLE);
	spin_lock_bh(&e->lock);
	/*
	 * Checked after setting our state and under the lock that slots are
	 * armed under: a kick or the peer scan either is seen here or finds
	 * RXE_DB_SLEEP and wakes us, making schedule() return at once.
	 */
	if (!list_empty(&e->armed) || kthread_should_stop()) {
		spin_unlock_bh(&e->lock);
		__set_current_state(TASK_RUNNING);
		return;
	}
	e->phase = RXE_DB_SLEEP;
	if (e->idle_dev) {
		rxe_counter_inc(e->idle_dev, RXE_CNT_DB_ENGINE_SLEEPS);
		e->idle_dev = NULL;
	}
	spin_unlock_bh(&e->lock);

	schedule();
	__set_current_state(TASK_RUNNING);

	spin_lock_bh(&e->lock);
	e->phase = RXE_DB_SPIN;
	first = list_first_entry_or_null(&e->armed, struct rxe_qp_db, armed);
	if (first)
		rxe_counter_inc(to_rdev(first->qp->ibqp.device),
				RXE_CNT_DB_ENGINE_WAKEUPS);
	spin_unlock_bh(&e->lock);
	/* a ring has just come, so spin first */
	e->last_ring = ktime_get();
}

/*
 * Another task wants the thread's CPU. On a machine with few CPUs that is
 * the producer itself or the peer it waits for: every microsecond the
 * thread polls is taken from them, and a poll that waits for its turn on
 * the CPU notices a ring far later than a kick would deliver it. So for
 * db_idle_us the slots of CPU producers are disarmed as they go quiet
 * (rxe_db_pass()) and kicks do not arm them again (rxe_db_kick()): their
 * producers kick, and the kick runs the send path in the producer's own
 * time slice. After that a kick arms its slot and wakes the thread, which
 * finds out again whether it has a CPU to itself. Peer slots, whose
 * producers cannot kick, stay polled.
 */
static void rxe_db_thread_yield(struct rxe_db_engine *e, ktime_t now)
{
	spin_lock_bh(&e->lock);
	e->kick_only_until = ktime_add_us(now, READ_ONCE(rxe_db_idle_us));
	spin_unlock_bh(&e->lock);
}

static int rxe_db_engine_thread(void *arg)
{
	struct rxe_db_ring rings[RXE_DB_BATCH];
	struct rxe_db_engine *e = arg;
	struct rxe_db_chain chain;
	bool contended;
	unsigned int n, us;
	ktime_t now;
	int mode;

	while (!kthread_should_stop()) {
		mode = READ_ONCE(rxe_db_mode);
		now = ktime_get();

		n = rxe_db_pass(e, mode, now, rings);
		if (n) {
			rxe_db_chain_begin(e, &chain);
			rxe_db_serve(rings, n);
			rxe_db_chain_end(e, &chain);
			e->last_ring = now;
			e->phase = RXE_DB_SPIN;
			cond_resched();
			continue;
		}

		if (list_empty_careful(&e->armed)) {
			rxe_db_sleep(e);
			continue;
		}

		/*
		 * Busy-poll right after a ring, when the next one is likeliest,
		 * but only while nothing else wants this CPU (as KVM's halt
		 * polling does): on a small machine the producer and the work
		 * the rings started need it. If something does, let the CPU
		 * producers kick for a while. Otherwise, and after db_spin_us,
		 * look at intervals until the idle timeout.
		 */
		contended = !single_task_running() || need_resched();
		if (mode == RXE_DB_MODE_ALWAYS ||
		    (!contended &&
		     ktime_us_delta(now, e->last_ring) < READ_ONCE(rxe_db_spin_us))) {
			e->phase = RXE_DB_SPIN;
			cpu_relax();
			cond_resched();
		} else {
			if (contended && mode == RXE_DB_MODE_ADAPTIVE)
				rxe_db_thread_yield(e, now);
			e->phase = RXE_DB_POLL;
			us = clamp(READ_ONCE(rxe_db_poll_us), 1, RXE_DB_POLL_MAX_US);
			usleep_range(us, 2 * us);
		}
	}
	return 0;
}

/**
 * rxe_db_engine_defer - let a ring's send path run a task it caused
 * @task: a task that rxe_sched_task() is asked to schedule
 *
 * The send path of a ring runs in the engine thread, and a kick's in the
 * producer that kicked. Whatever it schedules on the engine's devices in
 * the same call chain, the responder of a loopback peer and the completer
 * its acknowledgment wakes, that same thread runs next, instead of waking
 * an rxe_wq worker for each: on a loopback WQE that saves two work item
 * hand-offs, most of a ring's latency.
 *
 * Upstream rxe once called such tasks directly and stopped ("Don't call
 * direct between tasks"): a direct call nests one task in another's stack
 * and holds its locks, and all work ended up on one CPU. Here a deferred
 * task runs only after the one that caused it returned, from the thread's
 * own loop with no lock held, so nothing nests; and at most RXE_DB_CHAIN
 * tasks run per pass, after which this returns false and rxe_wq takes over
 * as usual, spreading the load again.
 *
 * Context: any; true only in task context, in the engine thread while it
 * serves rings or in a producer while its kick runs the send path. Takes a
 * QP reference that is dropped after the run.
 *
 * Return: true if the engine runs @task, false to queue it to rxe_wq.
 */
bool rxe_db_engine_defer(struct rxe_task *task)
{
	struct rxe_dev *rxe = to_rdev(task->qp->ibqp.device);
	struct rxe_db_engine *e = READ_ONCE(rxe->db_engine);
	struct rxe_db_chain *chain = NULL, *c;

	/*
	 * Softirqs (a wire's receive path) and interrupts keep rxe_wq. Our
	 * own chain, if any, was added by this task, so it is seen here.
	 */
	if (!e || !in_task() || list_empty(&e->chains))
		return false;
	spin_lock(&e->chain_lock);
	list_for_each_entry(c, &e->chains, node) {
		if (c->owner == current) {
			chain = c;
			break;
		}
	}
	spin_unlock(&e->chain_lock);
	/* only the owner touches its chain's tasks: no lock needed for them */
	if (!chain || chain->n == RXE_DB_CHAIN || !rxe_get(task->qp))
		return false;
	chain->task[chain->n++] = task;
	return true;
}

static struct rxe_db_engine *rxe_db_engine_get(struct rxe_dev *rxe)
{
	struct rxe_db_engine *e;
	int err;

	mutex_lock(&rxe_db_engines_lock);
	e = rxe->db_engine;
	if (e)
		goto out;
	if (rxe_db_shared && rxe_db_shared_engine) {
		e = rxe_db_shared_engine;
		goto found;
	}

	e = kzalloc_obj(*e);
	if (!e) {
		e = ERR_PTR(-ENOMEM);
		goto out;
	}
	spin_lock_init(&e->lock);
	spin_lock_init(&e->chain_lock);
	INIT_LIST_HEAD(&e->chains);
	INIT_LIST_HEAD(&e->armed);
	INIT_LIST_HEAD(&e->peers);
	hrtimer_setup(&e->peer_timer, rxe_db_peer_timer, CLOCK_MONOTONIC,
		      HRTIMER_MODE_REL_SOFT);
	e->phase = RXE_DB_SPIN;

	if (rxe_db_shared)
		e->thread = kthread_run(rxe_db_engine_thread, e, "rxe_db");
	else
		e->thread = kthread_run(rxe_db_engine_thread, e, "rxe_db/%s",
					dev_name(&rxe->ib_dev.dev));
	if (IS_ERR(e->thread)) {
		err = PTR_ERR(e->thread);
		kfree(e);
		e = ERR_PTR(err);
		goto out;
	}
	list_add(&e->list, &rxe_db_engines);
	if (rxe_db_shared)
		rxe_db_shared_engine = e;
found:
	e->users++;
	/* read without the mutex by rxe_db_engine_defer() */
	WRITE_ONCE(rxe->db_engine, e);
out:
	mutex_unlock(&rxe_db_engines_lock);
	return e;
}

/**
 * rxe_db_engine_attach - let the engine see a QP's doorbell slot
 * @qp: a QP that has just been given qp->db
 *
 * Starts the device's engine on first use. The slot starts IDLE, so the
 * first ring of a CPU producer is a kick; a peer slot is scanned from now
 * on. A staged QP has released nothing yet.
 *
 * Return: 0 or a negative errno.
 */
int rxe_db_engine_attach(struct rxe_qp *qp)
{
	struct rxe_qp_db *db = qp->db;
	struct rxe_db_engine *e;

	db->state = RXE_DB_SLOT_IDLE;
	db->uflags = RXE_DB_NEED_WAKEUP;
	INIT_LIST_HEAD(&db->armed);
	INIT_LIST_HEAD(&db->peer);
	if (db->flags & RXE_CREATE_QP_DOORBELL_STAGED) {
		qp->sq_released = queue_get_producer(qp->sq.queue,
						     QUEUE_TYPE_FROM_CLIENT);
		qp->sq_staged = true;
	}

	e = rxe_db_engine_get(to_rdev(qp->ibqp.device));
	if (IS_ERR(e))
		return PTR_ERR(e);

	if (!(db->flags & RXE_CREATE_QP_DOORBELL_PEER))
		return 0;

	spin_lock_bh(&e->lock);
	list_add_tail(&db->peer, &e->peers);
	e->nr_peers++;
	rxe_db_peer_timer_start(e);
	spin_unlock_bh(&e->lock);
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

	spin_lock_bh(&e->lock);
	if (db->state == RXE_DB_SLOT_ARMED)
		list_del_init(&db->armed);
	if (!list_empty(&db->peer)) {
		/* the peer timer stops by itself with the last peer slot */
		list_del_init(&db->peer);
		e->nr_peers--;
	}
	db->state = RXE_DB_SLOT_DETACHED;
	spin_unlock_bh(&e->lock);
}

/**
 * rxe_db_kick - a system call kick on a doorbell QP
 * @qp: the user QP that an empty send was posted to
 *
 * A CPU producer kicks when it read RXE_DB_NEED_WAKEUP after ringing: the
 * engine does not poll the slot. Arm it again and wake the engine if it
 * sleeps, so that the next rings need no kick, unless the engine has just
 * yielded its CPU to other tasks; take the ring out of the slot and judge
 * it here, as the engine would (on a staged QP only a ring releases WQEs,
 * never the kick itself); then queue the QP's send task, or, while the
 * engine yields and the producer waits for this one WQE, run it in the
 * caller's context, which is the producer's own, with the tasks it causes
 * on the engine's devices (db_inline).
 *
 * Context: process context, the POST_SEND system call.
 *
 * Return: true if the kick was handled, false if @qp has no doorbell and
 * the caller schedules the send task as before.
 */
bool rxe_db_kick(struct rxe_qp *qp)
{
	struct rxe_dev *rxe = to_rdev(qp->ibqp.device);
	struct rxe_qp_db *db = qp->db;
	struct rxe_db_chain chain;
	struct rxe_db_ring ring;
	struct rxe_db_engine *e;
	bool wake, polled, yielding, run_here, taken = false;
	ktime_t now;
	u32 val;

	if (!db)
		return false;

	rxe_counter_inc(rxe, RXE_CNT_DB_KICKS);
	e = rxe->db_engine;
	now = ktime_get();
	polled = READ_ONCE(rxe_db_mode) != RXE_DB_MODE_OFF;
	spin_lock_bh(&e->lock);
	/* a thread that yielded its CPU lets producers kick for a while */
	yielding = polled && ktime_before(now, e->kick_only_until);
	if (polled && !yielding)
		rxe_db_arm(e, db, now);
	val = rxe_db_take(db->slot);
	if (val != RXE_DB_IDLE)
		taken = rxe_db_judge(db, val, &ring);
	wake = e->phase == RXE_DB_SLEEP && db->state == RXE_DB_SLOT_ARMED;
	spin_unlock_bh(&e->lock);
	if (wake)
		wake_up_process(e->thread);

	if (taken) {
		rxe_db_account(&ring);
		rxe_put(ring.qp);
	}
	/*
	 * The send path runs whatever the ring was: a kick means "look".
	 * While the thread yields, no CPU is left for another context to run
	 * it: it runs here, in the producer's time slice, with what it
	 * causes, if the producer has nothing else outstanding and so waits
	 * for this WQE anyway. A producer that streams (more WQEs in flight)
	 * gains more from posting on while rxe_wq runs them elsewhere, as
	 * upstream: running its sends here cut ib_write_bw's message rate to
	 * 0.9x stock. Otherwise, too, the send path goes to rxe_wq, which
	 * lets it run on another CPU while this system call returns (measured
	 * faster than running it here when a CPU is free; see
	 * docs/rxe-doorbell.md). The count is the user's indices and only
	 * picks one of two correct paths.
	 */
	run_here = yielding && READ_ONCE(rxe_db_inline) &&
		   queue_count(qp->sq.queue, QUEUE_TYPE_FROM_CLIENT) <= 1;
	if (run_here) {
		rxe_db_chain_begin(e, &chain);
		rxe_run_task(&qp->send_task);
		rxe_db_chain_end(e, &chain);
	} else {
		rxe_sched_task(&qp->send_task);
	}
	return true;
}

/**
 * rxe_db_qp_modified - a doorbell QP changed state
 * @qp: the QP, after the modify-QP verb applied the new state
 *
 * Once the QP has left the error state (to RESET), RXE_DB_QP_ERROR no
 * longer holds and is cleared. A staged QP after a reset has released
 * nothing: the WQEs still posted wait for a new ring.
 */
void rxe_db_qp_modified(struct rxe_qp *qp)
{
	struct rxe_qp_db *db = qp->db;
	struct rxe_db_engine *e;
	u32 cons;

	if (!db)
		return;
	e = to_rdev(qp->ibqp.device)->db_engine;
	spin_lock_bh(&e->lock);
	if (db->state != RXE_DB_SLOT_DETACHED && qp_state(qp) != IB_QPS_ERR &&
	    (db->uflags & RXE_DB_QP_ERROR))
		rxe_db_set_uflags(db, db->uflags & ~RXE_DB_QP_ERROR);
	if (qp->sq_staged && qp_state(qp) == IB_QPS_RESET) {
		cons = queue_get_consumer(qp->sq.queue, QUEUE_TYPE_FROM_CLIENT);
		/*
		 * The reset made the requester start over from the consumer
		 * index. Pairs with the smp_load_acquire() of sq_released in
		 * the requester.
		 */
		smp_store_release(&qp->sq_released, cons);
	}
	spin_unlock_bh(&e->lock);
}

/**
 * rxe_db_engine_destroy - let go of a device's engine
 * @rxe: the device being deallocated
 *
 * All QPs of the device, and so all its slots, are gone by now. The engine
 * stops with its last device.
 */
void rxe_db_engine_destroy(struct rxe_dev *rxe)
{
	struct rxe_db_engine *e;

	mutex_lock(&rxe_db_engines_lock);
	e = rxe->db_engine;
	if (e) {
		WRITE_ONCE(rxe->db_engine, NULL);
		spin_lock_bh(&e->lock);
		if (e->idle_dev == rxe)
			e->idle_dev = NULL;
		spin_unlock_bh(&e->lock);
		if (--e->users) {
			e = NULL;
		} else {
			list_del(&e->list);
			if (e == rxe_db_shared_engine)
				rxe_db_shared_engine = NULL;
		}
	}
	mutex_unlock(&rxe_db_engines_lock);
	if (!e)
		return;

	WARN_ON(!list_empty(&e->armed) || !list_empty(&e->peers));
	hrtimer_cancel(&e->peer_timer);
	kthread_stop(e->thread);
	kfree(e);
}
