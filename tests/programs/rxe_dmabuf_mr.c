// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * rxe dma-buf MRs through libibverbs and the rxe provider
 * (ibv_reg_dmabuf_mr()): RDMA WRITE, READ, atomics, SEND and RECV through
 * them on an RC loopback pair of the device, access matching, bounds,
 * invalidation and revocation. Prints TAP; exits non-zero if a check failed.
 *
 *   rxe_dmabuf_mr DEV udmabuf   a udmabuf of memfd pages
 *   rxe_dmabuf_mr DEV heap      a buffer of the system dma-heap
 *   rxe_dmabuf_mr DEV p2p KIND:FD...
 *                               exports of the p2p_mmap_test module's fake
 *                               device, inherited as FDs (p2p_mmap_ktest rxe
 *                               runs this): KIND 0 host pages and 2 BAR UC
 *                               grant peers read and write, 1 vmalloc and 3
 *                               BAR WC write only. The module is told to
 *                               move (invalidate) and remove (revoke) them.
 *
 * In p2p mode the program writes RXE_DMABUF_MR_PATTERN(kind) at byte 64 of
 * each export, and after revoking kinds 1 and 2 tries to write
 * RXE_DMABUF_MR_LATE there, which must fail; p2p_mmap_ktest checks both
 * through its own mappings.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <linux/dma-heap.h>
#include <linux/udmabuf.h>
#include <infiniband/verbs.h>
#include "p2p_test_tap.h"
#include "rxe_dmabuf_mr.h"
#include "rxe_loopback.h"

static long page;

static enum ibv_wc_status atomic(struct env *e, enum ibv_wr_opcode op,
				 struct ibv_mr *rmr, uint64_t raddr,
				 uint64_t compare_add, uint64_t swap,
				 uint64_t *orig)
{
	static uint64_t id = 1ULL << 40;
	/* the original value lands in the local MR, then in *orig */
	uint64_t *res = (uint64_t *)(e->buf + LOCAL_SIZE - 8);
	struct ibv_sge sge = {
		.addr = (uintptr_t)res, .length = 8, .lkey = e->mr->lkey,
	};
	enum ibv_wc_status st;
	struct ibv_send_wr wr = {
		.wr_id = ++id, .sg_list = &sge, .num_sge = 1, .opcode = op,
		.send_flags = IBV_SEND_SIGNALED,
	};

	wr.wr.atomic.remote_addr = raddr;
	wr.wr.atomic.rkey = rmr->rkey;
	wr.wr.atomic.compare_add = compare_add;
	wr.wr.atomic.swap = swap;
	st = post_wait(e, 0, &wr, wr.wr_id);
	*orig = *res;
	return st;
}

/* SEND from (smr, saddr) on qp[0] into a receive at (dmr, daddr) on qp[1]. */
static enum ibv_wc_status send_recv(struct env *e, struct ibv_mr *smr,
				    void *saddr, struct ibv_mr *dmr,
				    void *daddr, uint32_t len,
				    enum ibv_wc_status *recv_status)
{
	static uint64_t id = 1ULL << 50;
	struct ibv_sge rs = { .addr = (uintptr_t)daddr, .length = len,
			      .lkey = dmr->lkey };
	struct ibv_recv_wr rwr = { .wr_id = ++id, .sg_list = &rs,
				   .num_sge = 1 }, *rbad;
	enum ibv_wc_status st;

	if (ibv_post_recv(e->qp[1], &rwr, &rbad))
		die("post_recv: %s", strerror(errno));
	st = rdma(e, IBV_WR_SEND, smr, saddr, len, smr, 0);
	*recv_status = st == IBV_WC_SUCCESS ?
		post_wait(e, 1, NULL, rwr.wr_id) : IBV_WC_GENERAL_ERR;
	return st;
}

/* A dma-buf and, when its exporter allows, a CPU view of it. */
struct dbuf {
	int fd;
	size_t size;
	unsigned char *cpu;	/* NULL: no CPU view */
	int memfd;
};

static void dbuf_udmabuf(struct dbuf *b, size_t size)
{
	struct udmabuf_create c = { .flags = UDMABUF_FLAGS_CLOEXEC,
				    .size = size };
	int dev;

	b->size = size;
	b->memfd = memfd_create("rxe_dmabuf_mr", MFD_ALLOW_SEALING);
	if (b->memfd < 0 || ftruncate(b->memfd, size) ||
	    fcntl(b->memfd, F_ADD_SEALS, F_SEAL_SHRINK))
		die("memfd: %s", strerror(errno));
	dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		die("/dev/udmabuf: %s", strerror(errno));
	c.memfd = b->memfd;
	b->fd = ioctl(dev, UDMABUF_CREATE, &c);
	close(dev);
	if (b->fd < 0)
		die("UDMABUF_CREATE: %s", strerror(errno));
	b->cpu = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      b->memfd, 0);
	if (b->cpu == MAP_FAILED)
		die("mmap memfd: %s", strerror(errno));
}

static void dbuf_heap(struct dbuf *b, size_t size)
{
	struct dma_heap_allocation_data d = { .len = size,
					      .fd_flags = O_RDWR | O_CLOEXEC };
	int heap = open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC);

	b->size = size;
	b->memfd = -1;
	if (heap < 0 || ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &d))
		die("system dma-heap: %s", strerror(errno));
	close(heap);
	b->fd = d.fd;
	b->cpu = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd, 0);
	if (b->cpu == MAP_FAILED)
		die("mmap heap buffer: %s", strerror(errno));
}

static void dbuf_free(struct dbuf *b)
{
	if (b->cpu)
		munmap(b->cpu, b->size);
	if (b->memfd >= 0)
		close(b->memfd);
	if (b->fd >= 0)
		close(b->fd);
}

static void fill(void *p, size_t len, unsigned int seed)
{
	unsigned char *c = p;
	size_t i;

	for (i = 0; i < len; i++)
		c[i] = (unsigned char)(seed * 131 + i * 7 + 1);
}

/*
 * The iova of an MR at byte off of a buffer: it keeps the offset's place in
 * its page. (ibv_reg_dmabuf_mr() sets mr->addr to the offset, not the iova.)
 */
#define IOVA(off) (0x1000000 + (uint64_t)(off))

static struct ibv_mr *reg(struct env *e, struct dbuf *b, uint64_t off,
			  size_t len, int access)
{
	return ibv_reg_dmabuf_mr(e->pd, off, len, IOVA(off), b->fd,
				 access);
}

/*
 * Everything an MR that grants read and write does, for an MR over
 * [off, off + len) of b. With a CPU view, data is checked there too.
 */
static void roundtrip(struct env *e, struct dbuf *b, uint64_t off, size_t len,
		      const char *what)
{
	unsigned char *l = (unsigned char *)e->buf, *cpu = b->cpu ? b->cpu + off : NULL;
	static const unsigned char zero[8];
	enum ibv_wc_status st, rst;
	uint64_t base, orig = 0, v;
	unsigned char pat[1000];
	struct ibv_mr *mr;

	mr = reg(e, b, off, len, ACC_ALL);
	check(mr != NULL, "%s: ibv_reg_dmabuf_mr at offset %" PRIu64 ", %zu bytes: %s",
	      what, off, len, mr ? "registered" : strerror(errno));
	if (!mr)
		return;
	base = IOVA(off);
	check((uintptr_t)mr->addr == off && mr->length == len,
	      "%s: MR address %p (the offset) length %zu", what, mr->addr,
	      mr->length);

	/* RDMA WRITE into it, seen by the CPU and read back by RDMA READ */
	fill(pat, sizeof(pat), 1);
	memcpy(l, pat, sizeof(pat));
	st = rdma(e, IBV_WR_RDMA_WRITE, e->mr, l, 1000, mr, base + 100);
	check(st == IBV_WC_SUCCESS, "%s: RDMA WRITE 1000 bytes: %s", what,
	      ibv_wc_status_str(st));
	if (cpu)
		check(!memcmp(cpu + 100, l, 1000), "%s: the CPU sees the write",
		      what);
	memset(l + 4096, 0, 1000);
	st = rdma(e, IBV_WR_RDMA_READ, e->mr, l + 4096, 1000, mr, base + 100);
	check(st == IBV_WC_SUCCESS && !memcmp(l + 4096, l, 1000),
	      "%s: RDMA READ returns it: %s", what, ibv_wc_status_str(st));
	if (cpu) {
		fill(cpu + 2000, 300, 2);
		st = rdma(e, IBV_WR_RDMA_READ, e->mr, l + 8192, 300, mr,
			  base + 2000);
		check(st == IBV_WC_SUCCESS && !memcmp(l + 8192, cpu + 2000, 300),
		      "%s: RDMA READ returns what the CPU wrote", what);
	}

	/* small writes: an aligned word, odd bytes across a word */
	memcpy(l, "\x11\x22\x33\x44", 4);
	st = rdma(e, IBV_WR_RDMA_WRITE, e->mr, l, 4, mr, base + 1200);
	memcpy(l + 8, "\xa1\xa2\xa3", 3);
	rst = rdma(e, IBV_WR_RDMA_WRITE, e->mr, l + 8, 3, mr, base + 1207);
	st = st ?: rst;
	st = st ?: rdma(e, IBV_WR_RDMA_READ, e->mr, l + 16, 12, mr, base + 1200);
	check(st == IBV_WC_SUCCESS && !memcmp(l + 16, "\x11\x22\x33\x44", 4) &&
	      !memcmp(l + 16 + 7, "\xa1\xa2\xa3", 3),
	      "%s: 4-byte and 3-byte writes land: %s", what,
	      ibv_wc_status_str(st));

	/* atomics on an aligned word */
	v = 40;
	memcpy(l + 24, &v, 8);
	st = rdma(e, IBV_WR_RDMA_WRITE, e->mr, l + 24, 8, mr, base + 1600);
	st = st ?: atomic(e, IBV_WR_ATOMIC_FETCH_AND_ADD, mr, base + 1600, 2, 0,
			  &orig);
	check(st == IBV_WC_SUCCESS && orig == 40, "%s: fetch-and-add returns %" PRIu64 ": %s",
	      what, orig, ibv_wc_status_str(st));
	st = atomic(e, IBV_WR_ATOMIC_CMP_AND_SWP, mr, base + 1600, 42, 7, &orig);
	check(st == IBV_WC_SUCCESS && orig == 42, "%s: compare-and-swap hits: %" PRIu64,
	      what, orig);
	st = atomic(e, IBV_WR_ATOMIC_CMP_AND_SWP, mr, base + 1600, 42, 9, &orig);
	check(st == IBV_WC_SUCCESS && orig == 7, "%s: compare-and-swap misses: %" PRIu64,
	      what, orig);
	if (cpu) {
		memcpy(&v, cpu + 1600, 8);
		check(v == 7, "%s: the CPU sees the atomics' result %" PRIu64, what, v);
	}
	st = atomic(e, IBV_WR_ATOMIC_FETCH_AND_ADD, mr, base + 1604, 1, 0, &orig);
	/* the rxe provider refuses it before the kernel sees it */
	check(st == IBV_WC_REM_INV_REQ_ERR || st == IBV_WC_REM_ACCESS_ERR ||
	      (st == IBV_WC_GENERAL_ERR && post_err == EINVAL),
	      "%s: misaligned atomic refused: %s", what,
	      post_err ? strerror(post_err) : ibv_wc_status_str(st));
	if (st != IBV_WC_SUCCESS && !post_err)
		env_connect(e);

	/* the MR as the local side: send from it, receive into it */
	st = send_recv(e, mr, (void *)(uintptr_t)(base + 100), e->mr, l + 12288,
		       1000, &rst);
	check(st == IBV_WC_SUCCESS && rst == IBV_WC_SUCCESS &&
	      !memcmp(l + 12288, pat, sizeof(pat)),
	      "%s: SEND from it: %s / %s", what, ibv_wc_status_str(st),
	      ibv_wc_status_str(rst));
	fill(l + 16384, 500, 3);
	st = send_recv(e, e->mr, l + 16384, mr, (void *)(uintptr_t)(base + 3000),
		       500, &rst);
	check(st == IBV_WC_SUCCESS && rst == IBV_WC_SUCCESS &&
	      (!cpu || !memcmp(cpu + 3000, l + 16384, 500)),
	      "%s: RECV into it: %s / %s", what, ibv_wc_status_str(st),
	      ibv_wc_status_str(rst));

	/* bounds: a write that runs past the end of the MR */
	st = rdma(e, IBV_WR_RDMA_WRITE, e->mr, l, 8, mr, base + len - 4);
	check(st == IBV_WC_REM_ACCESS_ERR, "%s: write past the end: %s", what,
	      ibv_wc_status_str(st));
	if (cpu && off + len + 4 <= b->size)
		check(!memcmp(cpu + len - 4, zero, 8),
		      "%s: nothing of it written", what);
	env_connect(e);

	check(!ibv_dereg_mr(mr), "%s: deregistered", what);
}

/*
 * A send that fails in the requester completes with its own status, the
 * work requests behind it with a flush (kernel patch 0041; before it, rxe
 * flushed the failed one too, for every kind of MR). Shown with the plain
 * MR: an SGE that runs past its end, then a good send.
 */
static void requester_error(struct env *e)
{
	struct ibv_sge bad = { .addr = (uintptr_t)e->buf + LOCAL_SIZE - 8,
			       .length = 16, .lkey = e->mr->lkey };
	struct ibv_sge good = { .addr = (uintptr_t)e->buf, .length = 8,
				.lkey = e->mr->lkey };
	struct ibv_send_wr wr[2] = {
		{ .wr_id = 1ULL << 60, .sg_list = &bad, .num_sge = 1,
		  .opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED,
		  .next = &wr[1] },
		{ .wr_id = (1ULL << 60) + 1, .sg_list = &good, .num_sge = 1,
		  .opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED },
	};
	enum ibv_wc_status st, st2;

	st = post_wait(e, 0, wr, wr[0].wr_id);
	st2 = post_wait(e, 0, NULL, wr[1].wr_id);
	/* rxe's status for an SGE outside its MR (copy_data(): -EINVAL) */
	check(st == IBV_WC_LOC_QP_OP_ERR && st2 == IBV_WC_WR_FLUSH_ERR,
	      "plain MR: a SEND past its end fails with its own status, the next is flushed: %s / %s",
	      ibv_wc_status_str(st), ibv_wc_status_str(st2));
	env_connect(e);
}

/* Registration errors, and an MR that outlives the fd it was made from. */
static void reg_errors(struct env *e, struct dbuf *b, const char *what)
{
	struct ibv_mr *mr;
	enum ibv_wc_status st;
	struct dbuf other;
	int fd, err;

	mr = reg(e, b, 0, b->size + 1, ACC_RW);
	err = errno;
	check(!mr && err == EINVAL, "%s: MR beyond the buffer refused: %s", what,
	      mr ? "registered" : strerror(err));
	mr = reg(e, b, b->size - 8, 16, ACC_RW);
	err = errno;
	check(!mr && err == EINVAL, "%s: MR across the end refused: %s", what,
	      mr ? "registered" : strerror(err));
	mr = reg(e, b, 0, 64, IBV_ACCESS_REMOTE_WRITE);
	err = errno;
	check(!mr && err == EINVAL, "%s: remote write without local write refused: %s",
	      what, mr ? "registered" : strerror(err));
	other = *b;
	other.fd = 1000;
	mr = reg(e, &other, 0, 64, ACC_RW);
	err = errno;
	check(!mr && err == EBADF, "%s: a closed fd refused: %s", what,
	      mr ? "registered" : strerror(err));
	other.fd = open("/dev/null", O_RDONLY);
	mr = reg(e, &other, 0, 64, ACC_RW);
	err = errno;
	check(!mr && err == EINVAL, "%s: a file that is no dma-buf refused: %s",
	      what, mr ? "registered" : strerror(err));
	close(other.fd);

	/* The MR holds its own reference on the buffer. */
	fd = dup(b->fd);
	other.fd = fd;
	mr = reg(e, &other, 0, 4096, ACC_RW);
	close(fd);
	if (!mr) {
		check(0, "%s: MR for the fd test: %s", what, strerror(errno));
		return;
	}
	fill(e->buf, 64, 4);
	st = rdma(e, IBV_WR_RDMA_WRITE, e->mr, e->buf, 64, mr,
		  IOVA(0));
	check(st == IBV_WC_SUCCESS && (!b->cpu || !memcmp(b->cpu, e->buf, 64)),
	      "%s: MR works after its fd was closed: %s", what,
	      ibv_wc_status_str(st));
	check(!ibv_dereg_mr(mr), "%s: and deregisters", what);
}

static int run_local(struct env *e, const char *kind)
{
	struct dbuf b;

	if (!strcmp(kind, "udmabuf"))
		dbuf_udmabuf(&b, 4 * page);
	else
		dbuf_heap(&b, 4 * page);
	roundtrip(e, &b, 0, b.size, kind);
	/* not page aligned, and not starting on a page of its own */
	roundtrip(e, &b, page + 24, 2 * page, kind);
	reg_errors(e, &b, kind);
	dbuf_free(&b);
	return 0;
}

/* ---- exports of the p2p_mmap_test module (p2p mode) ---- */

static const char *const kind_name[] = { "host", "vmalloc", "BAR UC", "BAR WC" };

/* A write-only export: writes work, reads of every kind are refused. */
static void write_only(struct env *e, struct dbuf *b, int kind)
{
	const char *what = kind_name[kind];
	enum ibv_wc_status st, rst;
	struct ibv_mr *mr;
	uint64_t orig, base;
	uint32_t v = RXE_DMABUF_MR_PATTERN(kind);
	int err;

	mr = reg(e, b, 0, b->size, ACC_RW);
	err = errno;
	check(!mr && err == EACCES, "%s: remote read refused at registration: %s",
	      what, mr ? "registered" : strerror(err));
	if (mr)
		ibv_dereg_mr(mr);
	mr = reg(e, b, 0, b->size, ACC_WO | IBV_ACCESS_REMOTE_ATOMIC);
	err = errno;
	check(!mr && err == EACCES, "%s: remote atomics refused at registration: %s",
	      what, mr ? "registered" : strerror(err));
	if (mr)
		ibv_dereg_mr(mr);

	mr = reg(e, b, 0, b->size, ACC_WO);
	check(mr != NULL, "%s: a remote-write MR registers: %s", what,
	      mr ? "yes" : strerror(errno));
	if (!mr)
		return;
	base = IOVA(0);
	memcpy(e->buf, &v, 4);
	st = rdma(e, IBV_WR_RDMA_WRITE, e->mr, e->buf, 4, mr,
		  base + RXE_DMABUF_MR_OFFSET);
	check(st == IBV_WC_SUCCESS, "%s: RDMA WRITE: %s", what,
	      ibv_wc_status_str(st));

	/* The rkey does not grant reads or atomics. */
	st = rdma(e, IBV_WR_RDMA_READ, e->mr, e->buf + 64, 4, mr, base);
	check(st == IBV_WC_REM_ACCESS_ERR, "%s: RDMA READ: %s", what,
	      ibv_wc_status_str(st));
	env_connect(e);
	st = atomic(e, IBV_WR_ATOMIC_FETCH_AND_ADD, mr, base, 1, 0, &orig);
	check(st == IBV_WC_REM_ACCESS_ERR, "%s: atomic: %s", what,
	      ibv_wc_status_str(st));
	env_connect(e);
	/* A local read, the MR as a send source: not granted either. */
	st = send_recv(e, mr, (void *)(uintptr_t)base, e->mr, e->buf + 128, 4,
		       &rst);
	check(st == IBV_WC_LOC_PROT_ERR, "%s: SEND from it: %s", what,
	      ibv_wc_status_str(st));
	env_connect(e);
	/* A receive is a write. */
	memcpy(e->buf + 256, &v, 4);
	st = send_recv(e, e->mr, e->buf + 256, mr,
		       (void *)(uintptr_t)(base + RXE_DMABUF_MR_OFFSET), 4,
		       &rst);
	check(st == IBV_WC_SUCCESS && rst == IBV_WC_SUCCESS,
	      "%s: RECV into it: %s / %s", what, ibv_wc_status_str(st),
	      ibv_wc_status_str(rst));
	check(!ibv_dereg_mr(mr), "%s: deregistered", what);
}

/*
 * Revocation while registered: the module moves the buffer (invalidate
 * without revoke), the MR maps it again; then the module removes the entry
 * (revoke), and the next write gets a remote access error.
 */
static void move_and_revoke(struct env *e, struct dbuf *b, int kind)
{
	const char *what = kind_name[kind];
	uint32_t v = RXE_DMABUF_MR_PATTERN(kind), late = RXE_DMABUF_MR_LATE;
	enum ibv_wc_status st;
	struct ibv_mr *mr;
	uint64_t base;
	int ret;

	mr = reg(e, b, 0, b->size, ACC_WO);
	if (!mr) {
		check(0, "%s: MR for revocation: %s", what, strerror(errno));
		return;
	}
	base = IOVA(0);
	memcpy(e->buf, &v, 4);
	memcpy(e->buf + 4, &late, 4);
	st = rdma(e, IBV_WR_RDMA_WRITE, e->mr, e->buf, 4, mr,
		  base + RXE_DMABUF_MR_OFFSET);
	check(st == IBV_WC_SUCCESS, "%s: write before the move: %s", what,
	      ibv_wc_status_str(st));

	ret = p2p_test_ctl("remap %d", kind);
	check(!ret, "%s: the exporter moves the buffer: %s", what,
	      ret ? strerror(ret) : "invalidated");
	st = rdma(e, IBV_WR_RDMA_WRITE, e->mr, e->buf, 4, mr,
		  base + RXE_DMABUF_MR_OFFSET);
	check(st == IBV_WC_SUCCESS, "%s: write after the move maps again: %s",
	      what, ibv_wc_status_str(st));

	ret = p2p_test_ctl("remove %d", kind);
	check(!ret, "%s: the exporter removes the entry: %s", what,
	      ret ? strerror(ret) : "revoked");
	st = rdma(e, IBV_WR_RDMA_WRITE, e->mr, e->buf + 4, 4, mr,
		  base + RXE_DMABUF_MR_OFFSET);
	check(st == IBV_WC_REM_ACCESS_ERR, "%s: write after revocation: %s",
	      what, ibv_wc_status_str(st));
	env_connect(e);
	st = rdma(e, IBV_WR_RDMA_WRITE, e->mr, e->buf + 4, 4, mr,
		  base + RXE_DMABUF_MR_OFFSET);
	check(st == IBV_WC_REM_ACCESS_ERR, "%s: and again: %s", what,
	      ibv_wc_status_str(st));
	env_connect(e);
	check(!ibv_dereg_mr(mr), "%s: a revoked MR deregisters", what);
}

static int run_p2p(struct env *e, int argc, char **argv)
{
	struct dbuf b[4] = {};
	int i, kind, fd;

	for (i = 0; i < argc; i++) {
		if (sscanf(argv[i], "%d:%d", &kind, &fd) != 2 || kind < 0 ||
		    kind > 3)
			die("bad KIND:FD %s", argv[i]);
		b[kind].fd = fd;
		b[kind].size = lseek(fd, 0, SEEK_END);
		b[kind].memfd = -1;
	}
	/* host and BAR UC grant read and write: everything works */
	roundtrip(e, &b[0], 0, b[0].size, kind_name[0]);
	roundtrip(e, &b[2], 0, b[2].size, kind_name[2]);
	/* vmalloc and BAR WC grant writes only */
	write_only(e, &b[1], 1);
	write_only(e, &b[3], 3);
	/* each pattern once more, in a kind that is moved and revoked */
	move_and_revoke(e, &b[1], 1);
	move_and_revoke(e, &b[2], 2);
	{
		uint32_t v = RXE_DMABUF_MR_PATTERN(0);
		struct ibv_mr *mr = reg(e, &b[0], 0, b[0].size, ACC_WO);
		enum ibv_wc_status st = IBV_WC_GENERAL_ERR;

		memcpy(e->buf, &v, 4);
		if (mr) {
			st = rdma(e, IBV_WR_RDMA_WRITE, e->mr, e->buf, 4, mr,
				  IOVA(RXE_DMABUF_MR_OFFSET));
			ibv_dereg_mr(mr);
		}
		check(st == IBV_WC_SUCCESS, "host: pattern written: %s",
		      ibv_wc_status_str(st));
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct env e;

	page = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 3)
		die("usage: %s DEV udmabuf|heap|p2p [KIND:FD...]", argv[0]);
	env_open(&e, argv[1]);
	env_connect(&e);
	requester_error(&e);
	if (!strcmp(argv[2], "udmabuf") || !strcmp(argv[2], "heap"))
		run_local(&e, argv[2]);
	else if (!strcmp(argv[2], "p2p"))
		run_p2p(&e, argc - 3, argv + 3);
	else
		die("unknown mode %s", argv[2]);
	env_close(&e);
	printf("1..%d\n", tests);
	return failed ? 1 : 0;
}
