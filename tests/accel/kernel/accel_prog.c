// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * Device programs: what a GPU kernel of a GPU-initiated networking stack
 * does (wait for a flag, write WQEs into the NIC's send queue, ring the
 * doorbell), as a list of ops a kernel thread runs.
 *
 * A program is validated as a whole before any of it runs
 * (accel_prog_validate()): every handle resolves in the submitting context,
 * every access of every execution lies inside its buffer or attachment and
 * is aligned, loops nest properly, and the ops it would execute, loops
 * unrolled, stay under ACCEL_MAX_STEPS. It names objects only by handle and
 * offset, never by address. A program that fails any check is refused
 * with -EINVAL (bad_op and bad_reason say where and why) and nothing of it
 * runs.
 *
 * While it runs, the program holds its objects: detaching an attachment or
 * deregistering a buffer it uses fails with -EBUSY, and closing the context
 * cancels the program and waits for its thread. A revoked attachment, a
 * cancel or the device's removal stop it between two ops or within a wait's
 * poll interval.
 */

#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/overflow.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "accel.h"

atomic_t accel_live_progs;

/* A wait spins this long, then polls every 10-20 us, as a GPU would spin. */
#define ACCEL_WAIT_SPIN_NS	(50 * NSEC_PER_USEC)

struct accel_xop {
	u16 code;
	u16 flags;
	u32 width;
	struct accel_buf *buf;		/* WAIT, SQ_POST */
	struct accel_att *att;		/* RING */
	u64 offset;
	u64 value;
	u64 mask;
	u64 stride;
	u32 count;			/* LOOP: iterations; SQ_POST: templates */
	u32 target;			/* LOOP */
	u32 us;				/* WAIT, SQ_POST: timeout; DELAY */
	/* while running */
	u32 left;			/* LOOP: iterations to go */
	u64 n;				/* SQ_POST: executions so far */
};

struct accel_prog_sq {
	struct accel_buf *buf;
	u32 wqe_size;
	u32 mask;
	u8 *ring;
	__le32 *prod_index;
	const __le32 *cons_index;
	u32 prod;			/* the producer index as the program sees it */
};

struct accel_prog {
	struct kref kref;
	struct accel_ctx *ctx;
	u64 seq;
	u32 n_ops;
	struct accel_xop *ops;
	bool has_sq;
	struct accel_prog_sq sq;
	/* the objects it uses, each once */
	unsigned int n_atts, n_bufs;
	struct accel_att **atts;
	struct accel_buf **bufs;

	atomic_t abort;			/* 0, or the status to stop with */
	bool finished;			/* results are final; set before done */
	struct completion done;		/* the thread is gone */
	bool reaped;			/* done was waited for; ctx->lock */
	int status;
	u32 failed_op;
	u64 steps;
	u64 rings;
};

/* ---- validation ---- */

struct accel_reject {
	u32 op;
	u32 reason;
};

static const char * const accel_reject_str[] = {
	[P2P_ACCEL_REJECT_SIZE] = "no ops, or more than max_ops",
	[P2P_ACCEL_REJECT_RESERVED] = "reserved field or unknown flag set",
	[P2P_ACCEL_REJECT_OPCODE] = "unknown opcode",
	[P2P_ACCEL_REJECT_HANDLE] = "no such buffer or attachment in this context",
	[P2P_ACCEL_REJECT_BOUNDS] = "access beyond its buffer or attachment",
	[P2P_ACCEL_REJECT_ALIGN] = "misaligned word or bad width",
	[P2P_ACCEL_REJECT_ACCESS] = "write to a read-only buffer",
	[P2P_ACCEL_REJECT_LIMIT] = "timeout, delay or count above its limit",
	[P2P_ACCEL_REJECT_LOOP] = "loop target ahead, overlapping or nested too deep",
	[P2P_ACCEL_REJECT_STEPS] = "executes more than max_steps ops",
	[P2P_ACCEL_REJECT_NO_SQ] = "send-queue op without a send queue",
	[P2P_ACCEL_REJECT_SQ] = "malformed send queue",
	[P2P_ACCEL_REJECT_ENGINE] = "DMA engine unavailable (no IOMMU)",
};

static int accel_reject(struct accel_reject *rej, u32 op, u32 reason)
{
	rej->op = op;
	rej->reason = reason;
	return reason == P2P_ACCEL_REJECT_ENGINE ? -EOPNOTSUPP : -EINVAL;
}

/* [offset, offset + len) inside [0, size) without overflow */
static bool accel_in_bounds(u64 offset, u64 len, u64 size)
{
	u64 end;

	return !check_add_overflow(offset, len, &end) && end <= size;
}

static bool accel_mem_zero(const void *p, size_t len)
{
	return !memchr_inv(p, 0, len);
}

static void accel_prog_add_obj(void **objs, unsigned int *n, void *obj)
{
	unsigned int i;

	for (i = 0; i < *n; i++)
		if (objs[i] == obj)
			return;
	objs[(*n)++] = obj;
}

static struct accel_buf *accel_prog_buf(struct accel_prog *prog, u32 handle)
{
	struct accel_buf *buf = xa_load(&prog->ctx->bufs, handle);

	if (buf)
		accel_prog_add_obj((void **)prog->bufs, &prog->n_bufs, buf);
	return buf;
}

/*
 * Loops: a LOOP at index j repeats [target, j]. Bodies nest or are
 * disjoint, never overlap; depth is bounded. Then every op's execution
 * count (the product of the counts of the loops around it) and their sum,
 * with saturation at ACCEL_MAX_STEPS + 1.
 */
static int accel_prog_loops(const struct p2p_accel_op *uops, u32 n,
			    u64 *execs, struct accel_reject *rej)
{
	u64 total = 0;
	u32 i, j;

	for (j = 0; j < n; j++) {
		u32 t = uops[j].loop.target;

		if (uops[j].opcode != P2P_ACCEL_OP_LOOP)
			continue;
		if (t >= j)
			return accel_reject(rej, j, P2P_ACCEL_REJECT_LOOP);
		if (!uops[j].loop.count ||
		    uops[j].loop.count > ACCEL_MAX_STEPS)
			return accel_reject(rej, j, P2P_ACCEL_REJECT_LIMIT);
		/* an earlier loop inside this body must lie wholly inside */
		for (i = t; i < j; i++)
			if (uops[i].opcode == P2P_ACCEL_OP_LOOP &&
			    uops[i].loop.target < t)
				return accel_reject(rej, j,
						    P2P_ACCEL_REJECT_LOOP);
	}

	for (i = 0; i < n; i++) {
		u32 depth = 0;

		execs[i] = 1;
		for (j = i; j < n; j++) {
			if (uops[j].opcode != P2P_ACCEL_OP_LOOP ||
			    uops[j].loop.target > i)
				continue;
			if (++depth > ACCEL_MAX_LOOP_DEPTH)
				return accel_reject(rej, j,
						    P2P_ACCEL_REJECT_LOOP);
			if (check_mul_overflow(execs[i],
					       (u64)uops[j].loop.count,
					       &execs[i]) ||
			    execs[i] > ACCEL_MAX_STEPS)
				return accel_reject(rej, i,
						    P2P_ACCEL_REJECT_STEPS);
		}
		total += execs[i];
		if (total > ACCEL_MAX_STEPS)
			return accel_reject(rej, i, P2P_ACCEL_REJECT_STEPS);
	}
	return 0;
}

static int accel_prog_sq(struct accel_prog *prog,
			 const struct p2p_accel_sq *usq,
			 struct accel_reject *rej, u32 n)
{
	struct accel_prog_sq *sq = &prog->sq;
	struct accel_buf *buf;
	u64 ring_len;

	if (usq->reserved)
		return accel_reject(rej, n, P2P_ACCEL_REJECT_RESERVED);
	buf = accel_prog_buf(prog, usq->buf);
	if (!buf)
		return accel_reject(rej, n, P2P_ACCEL_REJECT_HANDLE);
	if (!buf->writable)
		return accel_reject(rej, n, P2P_ACCEL_REJECT_ACCESS);
	if (usq->wqe_size < 16 || usq->wqe_size > 4096 ||
	    usq->wqe_size % 8 || usq->wqe_cnt < 2 || usq->wqe_cnt > 65536 ||
	    !is_power_of_2(usq->wqe_cnt))
		return accel_reject(rej, n, P2P_ACCEL_REJECT_SQ);
	ring_len = (u64)usq->wqe_size * usq->wqe_cnt;
	if (usq->prod_offset % sizeof(u32) || usq->cons_offset % sizeof(u32))
		return accel_reject(rej, n, P2P_ACCEL_REJECT_ALIGN);
	if (!accel_in_bounds(usq->ring_offset, ring_len, buf->length) ||
	    !accel_in_bounds(usq->prod_offset, sizeof(u32), buf->length) ||
	    !accel_in_bounds(usq->cons_offset, sizeof(u32), buf->length))
		return accel_reject(rej, n, P2P_ACCEL_REJECT_BOUNDS);
	/* alignment is that of the user address; kva keeps the page offset */
	if (((unsigned long)buf->kva + usq->prod_offset) % sizeof(u32) ||
	    ((unsigned long)buf->kva + usq->cons_offset) % sizeof(u32))
		return accel_reject(rej, n, P2P_ACCEL_REJECT_ALIGN);

	prog->has_sq = true;
	sq->buf = buf;
	sq->wqe_size = usq->wqe_size;
	sq->mask = usq->wqe_cnt - 1;
	sq->ring = buf->kva + usq->ring_offset;
	sq->prod_index = buf->kva + usq->prod_offset;
	sq->cons_index = buf->kva + usq->cons_offset;
	return 0;
}

static int accel_prog_op(struct accel_prog *prog, u32 i,
			 const struct p2p_accel_op *u, u64 execs,
			 struct accel_reject *rej)
{
	struct accel_xop *op = &prog->ops[i];
	struct accel_dev *adev = prog->ctx->adev;
	u64 last, off;

	op->code = u->opcode;
	op->flags = u->flags;
	if (u->reserved)
		return accel_reject(rej, i, P2P_ACCEL_REJECT_RESERVED);

	switch (u->opcode) {
	case P2P_ACCEL_OP_WAIT:
		if (u->flags || u->wait.reserved)
			return accel_reject(rej, i, P2P_ACCEL_REJECT_RESERVED);
		op->buf = accel_prog_buf(prog, u->wait.buf);
		if (!op->buf)
			return accel_reject(rej, i, P2P_ACCEL_REJECT_HANDLE);
		op->width = u->wait.width;
		if ((op->width != 4 && op->width != 8) ||
		    (op->width == 4 && (u->wait.value > U32_MAX ||
					u->wait.mask > U32_MAX)) ||
		    ((unsigned long)op->buf->kva + u->wait.offset) % op->width)
			return accel_reject(rej, i, P2P_ACCEL_REJECT_ALIGN);
		if (!accel_in_bounds(u->wait.offset, op->width,
				     op->buf->length))
			return accel_reject(rej, i, P2P_ACCEL_REJECT_BOUNDS);
		if (u->wait.timeout_us > ACCEL_MAX_TIMEOUT_US)
			return accel_reject(rej, i, P2P_ACCEL_REJECT_LIMIT);
		op->offset = u->wait.offset;
		op->value = u->wait.value;
		op->mask = u->wait.mask;
		op->us = u->wait.timeout_us;
		return 0;

	case P2P_ACCEL_OP_SQ_POST:
		if (u->flags || !accel_mem_zero(u->sq_post.reserved,
						sizeof(u->sq_post.reserved)))
			return accel_reject(rej, i, P2P_ACCEL_REJECT_RESERVED);
		if (!prog->has_sq)
			return accel_reject(rej, i, P2P_ACCEL_REJECT_NO_SQ);
		op->buf = accel_prog_buf(prog, u->sq_post.src_buf);
		if (!op->buf)
			return accel_reject(rej, i, P2P_ACCEL_REJECT_HANDLE);
		if (!u->sq_post.src_count)
			return accel_reject(rej, i, P2P_ACCEL_REJECT_LIMIT);
		if (u->sq_post.timeout_us > ACCEL_MAX_TIMEOUT_US)
			return accel_reject(rej, i, P2P_ACCEL_REJECT_LIMIT);
		/* the last template any execution reads */
		last = min_t(u64, execs, u->sq_post.src_count) - 1;
		if (check_mul_overflow(last, u->sq_post.src_stride, &off) ||
		    check_add_overflow(off, u->sq_post.src_offset, &off) ||
		    !accel_in_bounds(off, prog->sq.wqe_size, op->buf->length) ||
		    !accel_in_bounds(u->sq_post.src_offset, prog->sq.wqe_size,
				     op->buf->length))
			return accel_reject(rej, i, P2P_ACCEL_REJECT_BOUNDS);
		op->offset = u->sq_post.src_offset;
		op->stride = u->sq_post.src_stride;
		op->count = u->sq_post.src_count;
		op->us = u->sq_post.timeout_us;
		return 0;

	case P2P_ACCEL_OP_RING:
		if (u->flags & ~(P2P_ACCEL_RING_DMA | P2P_ACCEL_RING_SQ_PROD) ||
		    !accel_mem_zero(u->ring.reserved, sizeof(u->ring.reserved)))
			return accel_reject(rej, i, P2P_ACCEL_REJECT_RESERVED);
		op->att = xa_load(&prog->ctx->atts, u->ring.attach);
		if (!op->att)
			return accel_reject(rej, i, P2P_ACCEL_REJECT_HANDLE);
		accel_prog_add_obj((void **)prog->atts, &prog->n_atts, op->att);
		op->width = u->ring.width;
		if ((op->width != 4 && op->width != 8) ||
		    u->ring.offset % op->width ||
		    (op->width == 4 && u->ring.value > U32_MAX))
			return accel_reject(rej, i, P2P_ACCEL_REJECT_ALIGN);
		if (!accel_in_bounds(u->ring.offset, op->width,
				     op->att->dmabuf->size))
			return accel_reject(rej, i, P2P_ACCEL_REJECT_BOUNDS);
		if ((u->flags & P2P_ACCEL_RING_SQ_PROD) && !prog->has_sq)
			return accel_reject(rej, i, P2P_ACCEL_REJECT_NO_SQ);
		if ((u->flags & P2P_ACCEL_RING_DMA) && !adev->iommu)
			return accel_reject(rej, i, P2P_ACCEL_REJECT_ENGINE);
		op->offset = u->ring.offset;
		op->value = u->ring.value;
		return 0;

	case P2P_ACCEL_OP_DELAY:
		if (u->flags || !accel_mem_zero(u->delay.reserved,
						sizeof(u->delay.reserved)))
			return accel_reject(rej, i, P2P_ACCEL_REJECT_RESERVED);
		if (u->delay.us > ACCEL_MAX_DELAY_US)
			return accel_reject(rej, i, P2P_ACCEL_REJECT_LIMIT);
		op->us = u->delay.us;
		return 0;

	case P2P_ACCEL_OP_LOOP:
		/* target and count were checked by accel_prog_loops() */
		if (u->flags || !accel_mem_zero(u->loop.reserved,
						sizeof(u->loop.reserved)))
			return accel_reject(rej, i, P2P_ACCEL_REJECT_RESERVED);
		op->target = u->loop.target;
		op->count = u->loop.count;
		return 0;
	}
	return accel_reject(rej, i, P2P_ACCEL_REJECT_OPCODE);
}

/* Called with ctx->lock held, so that handles cannot go away meanwhile. */
static int accel_prog_validate(struct accel_prog *prog,
			       const struct p2p_accel_submit *req,
			       const struct p2p_accel_op *uops,
			       struct accel_reject *rej)
{
	u32 i, n = req->n_ops;
	u64 *execs;
	int ret;

	if (req->flags & ~P2P_ACCEL_SUBMIT_SQ || req->reserved)
		return accel_reject(rej, n, P2P_ACCEL_REJECT_RESERVED);
	if (req->flags & P2P_ACCEL_SUBMIT_SQ) {
		ret = accel_prog_sq(prog, &req->sq, rej, n);
		if (ret)
			return ret;
	}
	/* opcodes first, so that the loop checks read loop ops only */
	for (i = 0; i < n; i++)
		if (uops[i].opcode < P2P_ACCEL_OP_WAIT ||
		    uops[i].opcode > P2P_ACCEL_OP_LOOP)
			return accel_reject(rej, i, P2P_ACCEL_REJECT_OPCODE);

	execs = kvmalloc_objs(*execs, n);
	if (!execs)
		return -ENOMEM;
	ret = accel_prog_loops(uops, n, execs, rej);
	for (i = 0; !ret && i < n; i++)
		ret = accel_prog_op(prog, i, &uops[i], execs[i], rej);
	kvfree(execs);
	return ret;
}

/* ---- running ---- */

static void accel_prog_free(struct kref *kref)
{
	struct accel_prog *prog = container_of(kref, struct accel_prog, kref);

	kvfree(prog->ops);
	kfree(prog->atts);
	kfree(prog->bufs);
	kfree(prog);
	atomic_dec(&accel_live_progs);
}

static void accel_prog_put(struct accel_prog *prog)
{
	kref_put(&prog->kref, accel_prog_free);
}

/* Why the program must stop now, or 0. */
static int accel_prog_check(struct accel_prog *prog)
{
	int why = atomic_read(&prog->abort);
	unsigned int i;

	if (why)
		return why;
	for (i = 0; i < prog->n_atts; i++)
		if (accel_att_revoked(prog->atts[i]))
			return -ENODEV;
	return 0;
}

/*
 * Poll until ready() or the timeout, stopping early when the program must
 * stop: spin first, then sleep 10-20 us between looks.
 */
static int accel_prog_poll(struct accel_prog *prog, u32 timeout_us,
			   bool (*ready)(struct accel_prog *prog,
					 struct accel_xop *op),
			   struct accel_xop *op)
{
	u64 start = ktime_get_ns(), now;
	int ret;

	while (!ready(prog, op)) {
		ret = accel_prog_check(prog);
		if (ret)
			return ret;
		now = ktime_get_ns();
		if (now - start >= (u64)timeout_us * NSEC_PER_USEC)
			return -ETIMEDOUT;
		if (now - start < ACCEL_WAIT_SPIN_NS)
			cpu_relax();
		else
			usleep_range(10, 20);
	}
	return 0;
}

static bool accel_wait_ready(struct accel_prog *prog, struct accel_xop *op)
{
	void *p = op->buf->kva + op->offset;
	u64 v = op->width == 4 ? READ_ONCE(*(u32 *)p) : READ_ONCE(*(u64 *)p);

	return (v & op->mask) == op->value;
}

static int accel_op_wait(struct accel_prog *prog, struct accel_xop *op)
{
	int ret = accel_prog_poll(prog, op->us, accel_wait_ready, op);

	/* what the flag's writer stored before it, read after it */
	smp_rmb();
	return ret;
}

static bool accel_sq_room(struct accel_prog *prog, struct accel_xop *op)
{
	struct accel_prog_sq *sq = &prog->sq;
	/*
	 * The NIC consumed the WQE in a slot before it published the consumer
	 * index past it; the acquire orders our overwrite of the slot after
	 * that (pairs with the consumer index store of rxe's completer).
	 */
	u32 cons = le32_to_cpu(smp_load_acquire(sq->cons_index)) & sq->mask;

	return ((cons - sq->prod - 1) & sq->mask) != 0;
}

static int accel_op_sq_post(struct accel_prog *prog, struct accel_xop *op)
{
	struct accel_prog_sq *sq = &prog->sq;
	const void *src;
	int ret;

	/*
	 * The queue's producer index is the truth, not a copy of our own:
	 * a CPU may post to the same queue between two of our posts (the
	 * owner orders the two, as two threads posting to one QP must).
	 */
	sq->prod = le32_to_cpu(READ_ONCE(*sq->prod_index)) & sq->mask;
	ret = accel_prog_poll(prog, op->us, accel_sq_room, op);
	if (ret)
		return ret;
	src = op->buf->kva + op->offset + (op->n % op->count) * op->stride;
	memcpy(sq->ring + (u64)sq->prod * sq->wqe_size, src, sq->wqe_size);
	op->n++;
	sq->prod = (sq->prod + 1) & sq->mask;
	/*
	 * The WQE before the producer index that covers it: pairs with the
	 * NIC's load-acquire of the producer index (rxe: queue_get_producer()).
	 */
	smp_store_release(sq->prod_index, cpu_to_le32(sq->prod));
	return 0;
}

static int accel_op_ring(struct accel_prog *prog, struct accel_xop *op)
{
	u64 value = op->value;
	int ret;

	if (op->flags & P2P_ACCEL_RING_SQ_PROD) {
		/*
		 * The queue's producer index, read now as SQ_POST reads it: a
		 * CPU may have posted since (perftest --doorbell=accel posts
		 * on the CPU and has the accelerator ring only). The NIC reads
		 * the WQEs after its own acquire of the index.
		 */
		prog->sq.prod = le32_to_cpu(READ_ONCE(*prog->sq.prod_index)) &
				prog->sq.mask;
		value = prog->sq.prod;
	}

	if (op->flags & P2P_ACCEL_RING_DMA)
		ret = accel_att_ring_dma(op->att, op->offset, value, op->width);
	else
		ret = accel_att_ring_store(op->att, op->offset, value,
					   op->width);
	if (!ret)
		prog->rings++;
	return ret;
}

static int accel_op_delay(struct accel_prog *prog, struct accel_xop *op)
{
	u32 left = op->us, chunk;
	int ret;

	while (left) {
		chunk = min(left, 1000U);
		fsleep(chunk);
		left -= chunk;
		ret = accel_prog_check(prog);
		if (ret)
			return ret;
	}
	return 0;
}

static int accel_prog_run(struct accel_prog *prog)
{
	u32 pc = 0;
	int ret;

	if (prog->has_sq)
		prog->sq.prod = le32_to_cpu(READ_ONCE(*prog->sq.prod_index)) &
				prog->sq.mask;
	while (pc < prog->n_ops) {
		struct accel_xop *op = &prog->ops[pc];

		ret = accel_prog_check(prog);
		if (ret)
			break;
		prog->steps++;
		switch (op->code) {
		case P2P_ACCEL_OP_WAIT:
			ret = accel_op_wait(prog, op);
			break;
		case P2P_ACCEL_OP_SQ_POST:
			ret = accel_op_sq_post(prog, op);
			break;
		case P2P_ACCEL_OP_RING:
			ret = accel_op_ring(prog, op);
			break;
		case P2P_ACCEL_OP_DELAY:
			ret = accel_op_delay(prog, op);
			break;
		case P2P_ACCEL_OP_LOOP:
			if (--op->left) {
				pc = op->target;
				cond_resched();
				continue;
			}
			op->left = op->count;
			break;
		}
		if (ret)
			break;
		pc++;
	}
	prog->failed_op = pc;
	return ret;
}

static int accel_prog_thread(void *data)
{
	struct accel_prog *prog = data;
	struct accel_ctx *ctx = prog->ctx;
	struct accel_dev *adev = ctx->adev;

	prog->status = accel_prog_run(prog);
	atomic64_inc(&adev->programs);
	if (prog->status)
		atomic64_inc(&adev->programs_failed);
	/*
	 * Results before finished (read by poll and WAIT), and the wake-up
	 * before the completion: once done completes, the context may be
	 * closed and freed.
	 */
	smp_store_release(&prog->finished, true);
	wake_up_interruptible_poll(&ctx->wq, EPOLLIN | EPOLLRDNORM);
	kthread_complete_and_exit(&prog->done, 0);
}

/*
 * Wait until the program's thread is gone; ctx->lock held. The thread
 * completes done once, and a wait consumes that: a second waiter (device
 * removal cancels, then close cancels again) must not wait, or it waits
 * forever.
 */
static void accel_prog_reap(struct accel_prog *prog)
{
	if (prog->reaped)
		return;
	wait_for_completion(&prog->done);
	prog->reaped = true;
}

static bool accel_prog_finished(const struct accel_prog *prog)
{
	/* pairs with the release in accel_prog_thread(): results are final */
	return smp_load_acquire(&prog->finished);
}

/* ---- the context's side; ctx->lock is held unless said otherwise ---- */

bool accel_prog_running(struct accel_ctx *ctx)
{
	return ctx->prog && !accel_prog_finished(ctx->prog);
}

/* Does the running program use this attachment or buffer? */
bool accel_prog_uses(struct accel_ctx *ctx, const void *obj)
{
	struct accel_prog *prog = ctx->prog;
	unsigned int i;

	if (!accel_prog_running(ctx))
		return false;
	for (i = 0; i < prog->n_atts; i++)
		if (prog->atts[i] == obj)
			return true;
	for (i = 0; i < prog->n_bufs; i++)
		if (prog->bufs[i] == obj)
			return true;
	return false;
}

/**
 * accel_prog_submit() - validate a program and start it
 * @ctx: the context, lock held
 * @req: the request; bad_op and bad_reason are written on rejection
 *
 * Return: 0, -EBUSY while the previous program runs, -EINVAL for a
 * malformed program, -EOPNOTSUPP for the DMA engine without an IOMMU,
 * -EFAULT, -ENOMEM.
 */
int accel_prog_submit(struct accel_ctx *ctx, struct p2p_accel_submit *req)
{
	struct accel_reject rej = { .op = req->n_ops };
	struct p2p_accel_op *uops;
	struct accel_prog *prog;
	struct task_struct *task;
	u32 i;
	int ret;

	req->bad_op = 0;
	req->bad_reason = P2P_ACCEL_REJECT_NONE;
	if (accel_prog_running(ctx))
		return -EBUSY;
	if (!req->n_ops || req->n_ops > ACCEL_MAX_OPS) {
		ret = accel_reject(&rej, req->n_ops, P2P_ACCEL_REJECT_SIZE);
		goto rejected;
	}
	uops = memdup_array_user(u64_to_user_ptr(req->ops), req->n_ops,
				 sizeof(*uops));
	if (IS_ERR(uops))
		return PTR_ERR(uops);

	ret = -ENOMEM;
	prog = kzalloc_obj(*prog);
	if (!prog)
		goto err_uops;
	kref_init(&prog->kref);
	init_completion(&prog->done);
	prog->ctx = ctx;
	prog->n_ops = req->n_ops;
	prog->ops = kvzalloc_objs(*prog->ops, req->n_ops);
	prog->atts = kzalloc_objs(*prog->atts, req->n_ops);
	prog->bufs = kzalloc_objs(*prog->bufs, req->n_ops + 1);
	atomic_inc(&accel_live_progs);
	if (!prog->ops || !prog->atts || !prog->bufs)
		goto err_prog;

	ret = accel_prog_validate(prog, req, uops, &rej);
	if (ret)
		goto err_prog;
	for (i = 0; i < prog->n_ops; i++)
		prog->ops[i].left = prog->ops[i].count;

	prog->seq = ++ctx->prog_seq;
	task = kthread_create(accel_prog_thread, prog, "p2p_accel%d/%llu",
			      ctx->adev->id, prog->seq);
	if (IS_ERR(task)) {
		ret = PTR_ERR(task);
		goto err_prog;
	}
	if (ctx->prog) {
		/*
		 * finished is published before the old thread's last touch of
		 * its program, the complete() in kthread_complete_and_exit():
		 * wait for that before the program can be freed.
		 */
		accel_prog_reap(ctx->prog);
		accel_prog_put(ctx->prog);
	}
	ctx->prog = prog;
	req->seq = prog->seq;
	kfree(uops);
	wake_up_process(task);
	return 0;

err_prog:
	accel_prog_put(prog);
err_uops:
	kfree(uops);
rejected:
	if (rej.reason) {
		req->bad_op = rej.op;
		req->bad_reason = rej.reason;
		atomic64_inc(&ctx->adev->programs_rejected);
		dev_dbg(&ctx->adev->pdev->dev, "program rejected at op %u: %s\n",
			rej.op, accel_reject_str[rej.reason]);
	}
	return ret;
}

/**
 * accel_prog_wait() - wait for the latest program and read its status
 * @ctx: the context, lock not held (the wait sleeps)
 * @req: timeout in; the results out
 *
 * Return: 0 with the results, -ENOENT if nothing was submitted, -ETIME if
 * the program still runs at the timeout, -EINTR on a signal.
 */
int accel_prog_wait(struct accel_ctx *ctx, struct p2p_accel_wait *req)
{
	struct accel_prog *prog;
	long left;
	int ret = 0;

	mutex_lock(&ctx->lock);
	prog = ctx->prog;
	if (prog)
		kref_get(&prog->kref);
	mutex_unlock(&ctx->lock);
	if (!prog)
		return -ENOENT;

	if (!req->timeout_ms) {
		if (!accel_prog_finished(prog))
			ret = -ETIME;
	} else {
		left = wait_event_interruptible_timeout(ctx->wq,
							accel_prog_finished(prog),
							msecs_to_jiffies(req->timeout_ms));
		if (left < 0)
			ret = -EINTR;
		else if (!left)
			ret = -ETIME;
	}
	if (!ret) {
		req->seq = prog->seq;
		req->status = prog->status;
		req->failed_op = prog->status ? prog->failed_op : 0;
		req->steps = prog->steps;
		req->rings = prog->rings;
		req->sq_prod = prog->sq.prod;
	}
	accel_prog_put(prog);
	return ret;
}

/* Stop the running program with @why and wait for its thread; lock held. */
void accel_prog_cancel(struct accel_ctx *ctx, int why)
{
	struct accel_prog *prog = ctx->prog;

	if (!prog)
		return;
	atomic_cmpxchg(&prog->abort, 0, why);
	accel_prog_reap(prog);
}

/* The context goes: the program was cancelled and waited for. */
void accel_prog_release(struct accel_ctx *ctx)
{
	if (ctx->prog)
		accel_prog_put(ctx->prog);
	ctx->prog = NULL;
}
