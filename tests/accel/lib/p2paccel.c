// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * libp2paccel: thin wrappers over the p2p_accel character device's ioctls
 * (p2p_accel.h) and a program builder. See p2paccel.h.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "p2p_accel.h"
#include "p2paccel.h"

#define P2PACCEL_DEFAULT_DEV	"/dev/p2p_accel0"

struct p2paccel {
	int fd;
};

struct p2paccel_prog {
	struct p2p_accel_op *ops;
	uint32_t n, cap;
	int has_sq;
	struct p2p_accel_sq sq;
	uint32_t sq_buf;	/* registered by p2paccel_prog_set_sq() */
};

/* rdma-core's convention: return the errno, and leave it in errno too. */
static int err_ret(int err)
{
	errno = err;
	return err;
}

static int ioctl_ret(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? err_ret(errno) : 0;
}

/* A caller's struct of @inlen bytes: zero what we do not fill. */
static int out_struct(void *p, size_t inlen, size_t min)
{
	if (!p || inlen < min)
		return err_ret(EINVAL);
	memset(p, 0, inlen);
	return 0;
}

struct p2paccel *p2paccel_open(const char *path)
{
	struct p2paccel *acc = calloc(1, sizeof(*acc));

	if (!acc)
		return NULL;
	acc->fd = open(path ? path : P2PACCEL_DEFAULT_DEV, O_RDWR | O_CLOEXEC);
	if (acc->fd < 0) {
		int err = errno;

		free(acc);
		errno = err;
		return NULL;
	}
	return acc;
}

void p2paccel_close(struct p2paccel *acc)
{
	if (!acc)
		return;
	close(acc->fd);
	free(acc);
}

int p2paccel_fd(const struct p2paccel *acc)
{
	return acc->fd;
}

int p2paccel_query(struct p2paccel *acc, struct p2paccel_info *info,
		   size_t inlen)
{
	struct p2p_accel_info k;
	int ret;

	ret = out_struct(info, inlen, offsetof(struct p2paccel_info, reserved));
	if (ret)
		return ret;
	ret = ioctl_ret(acc->fd, P2P_ACCEL_IOC_INFO, &k);
	if (ret)
		return ret;
	info->flags = k.flags;
	info->dma_mask_bits = k.dma_mask_bits;
	info->max_ops = k.max_ops;
	info->max_loop_depth = k.max_loop_depth;
	info->max_steps = k.max_steps;
	info->max_delay_us = k.max_delay_us;
	info->max_timeout_us = k.max_timeout_us;
	info->max_attach = k.max_attach;
	info->max_bufs = k.max_bufs;
	info->max_buf_bytes = k.max_buf_bytes;
	memcpy(info->pci_name, k.pci_name, sizeof(info->pci_name));
	info->pci_name[sizeof(info->pci_name) - 1] = 0;
	return 0;
}

int p2paccel_attach(struct p2paccel *acc, int dmabuf_fd, uint32_t *handle)
{
	struct p2p_accel_attach a = { .fd = dmabuf_fd };
	int ret = ioctl_ret(acc->fd, P2P_ACCEL_IOC_ATTACH, &a);

	if (!ret)
		*handle = a.handle;
	return ret;
}

int p2paccel_detach(struct p2paccel *acc, uint32_t handle)
{
	return ioctl_ret(acc->fd, P2P_ACCEL_IOC_DETACH, &handle);
}

int p2paccel_query_attach(struct p2paccel *acc, uint32_t handle,
			  struct p2paccel_attach_attr *attr, size_t inlen)
{
	struct p2p_accel_attach_query q = { .handle = handle };
	int ret;

	ret = out_struct(attr, inlen,
			 offsetof(struct p2paccel_attach_attr, reserved));
	if (ret)
		return ret;
	ret = ioctl_ret(acc->fd, P2P_ACCEL_IOC_QUERY_ATTACH, &q);
	if (ret)
		return ret;
	attr->state = q.state;
	attr->vmapped = q.vmapped;
	attr->size = q.size;
	attr->dma_addr = q.dma_addr;
	attr->invalidations = q.invalidations;
	attr->rings = q.rings;
	return 0;
}

int p2paccel_reg_buf(struct p2paccel *acc, void *addr, size_t length,
		     uint32_t flags, uint32_t *handle)
{
	struct p2p_accel_reg_buf r = {
		.addr = (uintptr_t)addr,
		.length = length,
		.flags = flags,
	};
	int ret = ioctl_ret(acc->fd, P2P_ACCEL_IOC_REG_BUF, &r);

	if (!ret)
		*handle = r.handle;
	return ret;
}

int p2paccel_dereg_buf(struct p2paccel *acc, uint32_t handle)
{
	return ioctl_ret(acc->fd, P2P_ACCEL_IOC_DEREG_BUF, &handle);
}

struct p2paccel_prog *p2paccel_prog_new(void)
{
	return calloc(1, sizeof(struct p2paccel_prog));
}

void p2paccel_prog_free(struct p2paccel *acc, struct p2paccel_prog *prog)
{
	if (!prog)
		return;
	if (prog->has_sq && acc)
		p2paccel_dereg_buf(acc, prog->sq_buf);
	free(prog->ops);
	free(prog);
}

uint32_t p2paccel_prog_here(const struct p2paccel_prog *prog)
{
	return prog->n;
}

static struct p2p_accel_op *prog_add(struct p2paccel_prog *prog,
				     uint16_t opcode, uint16_t flags)
{
	struct p2p_accel_op *op;

	if (prog->n == prog->cap) {
		uint32_t cap = prog->cap ? 2 * prog->cap : 16;

		op = realloc(prog->ops, cap * sizeof(*op));
		if (!op)
			return NULL;
		prog->ops = op;
		prog->cap = cap;
	}
	op = &prog->ops[prog->n++];
	memset(op, 0, sizeof(*op));
	op->opcode = opcode;
	op->flags = flags;
	return op;
}

int p2paccel_prog_wait(struct p2paccel_prog *prog, uint32_t buf,
		       uint64_t offset, uint32_t width, uint64_t value,
		       uint64_t mask, uint32_t timeout_us)
{
	struct p2p_accel_op *op = prog_add(prog, P2P_ACCEL_OP_WAIT, 0);

	if (!op)
		return err_ret(ENOMEM);
	op->wait.buf = buf;
	op->wait.offset = offset;
	op->wait.width = width;
	op->wait.value = value;
	op->wait.mask = mask;
	op->wait.timeout_us = timeout_us;
	return 0;
}

int p2paccel_prog_sq_post(struct p2paccel_prog *prog, uint32_t src_buf,
			  uint64_t src_offset, uint64_t src_stride,
			  uint32_t src_count, uint32_t timeout_us)
{
	struct p2p_accel_op *op = prog_add(prog, P2P_ACCEL_OP_SQ_POST, 0);

	if (!op)
		return err_ret(ENOMEM);
	op->sq_post.src_buf = src_buf;
	op->sq_post.src_offset = src_offset;
	op->sq_post.src_stride = src_stride;
	op->sq_post.src_count = src_count;
	op->sq_post.timeout_us = timeout_us;
	return 0;
}

int p2paccel_prog_ring(struct p2paccel_prog *prog, uint32_t attach,
		       uint64_t offset, uint32_t width, uint64_t value,
		       uint32_t flags)
{
	struct p2p_accel_op *op = prog_add(prog, P2P_ACCEL_OP_RING, flags);

	if (!op)
		return err_ret(ENOMEM);
	op->ring.attach = attach;
	op->ring.offset = offset;
	op->ring.width = width;
	op->ring.value = value;
	return 0;
}

int p2paccel_prog_delay(struct p2paccel_prog *prog, uint32_t us)
{
	struct p2p_accel_op *op = prog_add(prog, P2P_ACCEL_OP_DELAY, 0);

	if (!op)
		return err_ret(ENOMEM);
	op->delay.us = us;
	return 0;
}

int p2paccel_prog_loop(struct p2paccel_prog *prog, uint32_t target,
		       uint32_t count)
{
	struct p2p_accel_op *op = prog_add(prog, P2P_ACCEL_OP_LOOP, 0);

	if (!op)
		return err_ret(ENOMEM);
	op->loop.target = target;
	op->loop.count = count;
	return 0;
}

int p2paccel_prog_raw(struct p2paccel_prog *prog, const void *raw, size_t len)
{
	struct p2p_accel_op *op;

	if (len != sizeof(*op))
		return err_ret(EINVAL);
	op = prog_add(prog, 0, 0);
	if (!op)
		return err_ret(ENOMEM);
	memcpy(op, raw, sizeof(*op));
	return 0;
}

int p2paccel_prog_set_sq(struct p2paccel *acc, struct p2paccel_prog *prog,
			 const struct p2paccel_sq_desc *sq, size_t inlen)
{
	uintptr_t ring, prod, cons, lo, hi;
	uint32_t handle;
	int ret;

	if (!sq || inlen < offsetof(struct p2paccel_sq_desc, reserved) ||
	    sq->comp_mask || prog->has_sq)
		return err_ret(EINVAL);
	if (inlen >= sizeof(*sq)) {
		static const uint8_t zero[sizeof(sq->reserved)];

		if (memcmp(sq->reserved, zero, sizeof(zero)))
			return err_ret(EINVAL);
	}
	ring = (uintptr_t)sq->buf;
	prod = (uintptr_t)sq->prod_index;
	cons = (uintptr_t)sq->cons_index;
	lo = ring < prod ? ring : prod;
	lo = lo < cons ? lo : cons;
	hi = ring + (uintptr_t)sq->wqe_size * sq->wqe_cnt;
	hi = hi > prod + 4 ? hi : prod + 4;
	hi = hi > cons + 4 ? hi : cons + 4;
	ret = p2paccel_reg_buf(acc, (void *)lo, hi - lo, P2PACCEL_BUF_WRITE,
			       &handle);
	if (ret)
		return ret;
	prog->has_sq = 1;
	prog->sq_buf = handle;
	prog->sq.buf = handle;
	prog->sq.wqe_size = sq->wqe_size;
	prog->sq.wqe_cnt = sq->wqe_cnt;
	prog->sq.ring_offset = ring - lo;
	prog->sq.prod_offset = prod - lo;
	prog->sq.cons_offset = cons - lo;
	return 0;
}

static const char *const reject_str[] = {
	[P2P_ACCEL_REJECT_NONE] = "accepted",
	[P2P_ACCEL_REJECT_SIZE] = "no ops, or more than max_ops",
	[P2P_ACCEL_REJECT_RESERVED] = "a reserved field or an unknown flag is set",
	[P2P_ACCEL_REJECT_OPCODE] = "unknown opcode",
	[P2P_ACCEL_REJECT_HANDLE] = "no such buffer or attachment in this context",
	[P2P_ACCEL_REJECT_BOUNDS] = "an access beyond its buffer or attachment",
	[P2P_ACCEL_REJECT_ALIGN] = "a misaligned word or a bad width",
	[P2P_ACCEL_REJECT_ACCESS] = "a write to a read-only buffer",
	[P2P_ACCEL_REJECT_LIMIT] = "a timeout, delay or count above its limit",
	[P2P_ACCEL_REJECT_LOOP] = "a loop target ahead, overlapping loops, or loops nested too deep",
	[P2P_ACCEL_REJECT_STEPS] = "the program would execute more than max_steps ops",
	[P2P_ACCEL_REJECT_NO_SQ] = "a send-queue op in a program without a send queue",
	[P2P_ACCEL_REJECT_SQ] = "a malformed send queue",
	[P2P_ACCEL_REJECT_ENGINE] = "the DMA engine is not available (no IOMMU)",
};

const char *p2paccel_reject_str(uint32_t reason)
{
	if (reason < sizeof(reject_str) / sizeof(reject_str[0]) &&
	    reject_str[reason])
		return reject_str[reason];
	return "unknown reason";
}

int p2paccel_submit(struct p2paccel *acc, struct p2paccel_prog *prog,
		    struct p2paccel_reject *rej, size_t inlen)
{
	struct p2p_accel_submit s = {
		.ops = (uintptr_t)prog->ops,
		.n_ops = prog->n,
	};
	int ret;

	if (rej) {
		ret = out_struct(rej, inlen,
				 offsetof(struct p2paccel_reject, reserved));
		if (ret)
			return ret;
	}
	if (prog->has_sq) {
		s.flags |= P2P_ACCEL_SUBMIT_SQ;
		s.sq = prog->sq;
	}
	ret = ioctl_ret(acc->fd, P2P_ACCEL_IOC_SUBMIT, &s);
	if (ret && rej) {
		rej->op = s.bad_op;
		rej->reason = s.bad_reason;
	}
	errno = ret;
	return ret;
}

int p2paccel_wait(struct p2paccel *acc, int timeout_ms,
		  struct p2paccel_status *st, size_t inlen)
{
	struct p2p_accel_wait w = {
		.timeout_ms = timeout_ms < 0 ? 0 : timeout_ms,
	};
	int ret;

	ret = out_struct(st, inlen, offsetof(struct p2paccel_status, reserved));
	if (ret)
		return ret;
	ret = ioctl_ret(acc->fd, P2P_ACCEL_IOC_WAIT, &w);
	if (ret)
		return ret;
	st->seq = w.seq;
	st->status = w.status;
	st->failed_op = w.failed_op;
	st->steps = w.steps;
	st->rings = w.rings;
	st->sq_prod = w.sq_prod;
	return 0;
}

int p2paccel_cancel(struct p2paccel *acc)
{
	return ioctl_ret(acc->fd, P2P_ACCEL_IOC_CANCEL, NULL);
}

int p2paccel_set_eventfd(struct p2paccel *acc, int eventfd)
{
	int32_t fd = eventfd;

	return ioctl_ret(acc->fd, P2P_ACCEL_IOC_SET_EVENTFD, &fd);
}

int p2paccel_get_revoked(struct p2paccel *acc, uint64_t *handles)
{
	struct p2p_accel_events ev;
	int ret = ioctl_ret(acc->fd, P2P_ACCEL_IOC_GET_EVENTS, &ev);

	if (!ret)
		*handles = ev.revoked;
	return ret;
}

int p2paccel_stale_dma(struct p2paccel *acc, uint32_t handle,
		       uint64_t offset, uint32_t width, uint64_t value,
		       uint64_t *dma_addr)
{
	struct p2p_accel_stale_dma s = {
		.handle = handle,
		.offset = offset,
		.width = width,
		.value = value,
	};
	int ret = ioctl_ret(acc->fd, P2P_ACCEL_IOC_STALE_DMA, &s);

	if (!ret && dma_addr)
		*dma_addr = s.dma_addr;
	return ret;
}
