// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * The peer accelerator (p2p_accel.ko on qemu's edu behind intel-iommu)
 * through its library, libp2paccel. Prints TAP; exits non-zero on failure.
 *
 *   accel_test info          the device: an IOMMU, the DMA ring engine
 *   accel_test udmabuf       exporter-agnostic attach (a udmabuf): a store
 *                            ring and an edu DMA ring land, the DMA one at
 *                            an IOVA, counted by the DMA engine only
 *   accel_test sends         the accelerator posts WQEs into an rxe QP's
 *                            send queue and rings its doorbell export, N
 *                            times with each engine: exactly N complete
 *   accel_test reject        every kind of malformed program: EINVAL, the
 *                            reason, and nothing of it ran
 *   accel_test revoke-destroy|revoke-kill|revoke-linkdel DEV
 *                            a program ringing a doorbell export is revoked
 *                            by QP destroy, the exporter's SIGKILL or
 *                            `rdma link del DEV`: it stops with ENODEV, the
 *                            context is told, no late write lands, and an
 *                            edu DMA to the stale IOVA faults in the IOMMU
 *   accel_test unplug        the accelerator's PCI function is unbound from
 *                            its driver while edu rings a doorbell export:
 *                            the program stops with ENODEV, the importer is
 *                            detached from the dma-buf, no ring lands after
 *                            it, the exporter's revocation (QP destroy)
 *                            works; then the function is bound again
 *   accel_test proxy N revoked|orphaned
 *                            libibverbs' CPU proxy (IBV_PEER_QP_PROXY): edu
 *                            imports the shadow doorbell and rings it N
 *                            times by DMA, N by store: exactly N sends go
 *                            each time, 2 more stay staged; the QP
 *                            destroyed while edu rings by DMA. revoked: the
 *                            kernel's shadow (UVERBS_OBJECT_SHADOW_DB) is
 *                            revoked as in revoke-destroy; orphaned: the
 *                            heap's is not (the checks say how that
 *                            differs from revoke-destroy)
 *   accel_test proxy-kill    the kernel's shadow doorbell of a process that
 *                            is killed is revoked, as in revoke-kill
 *   accel_test isolation     two processes' contexts cannot reach each
 *                            other's attachments
 *   accel_test cycles N      N attach/run/revoke cycles leave nothing behind
 *   accel_test put N         the demo, a GPU-initiated put: the CPU sets a
 *                            flag; the accelerator builds and rings N RDMA
 *                            writes into a staged QP; the CPU checks the data
 *   accel_test bench N       (bench/accel) JSON: N page rings by the CPU
 *                            against N store rings by the accelerator
 *
 * The demo (put) and proxy make their QPs through libibverbs and the
 * ibv_peer_* verbs, as an application does. The other parts still make
 * theirs with the raw helpers of rxe_db_bench.h
 * (RXE_CREATE_QP_DOORBELL_PEER) and write their WQE templates with
 * raw_qp_post_write() into a scratch queue.
 */

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/udmabuf.h>
#include "rxe_db_bench.h"
#include "p2p_test_tap.h"
#include "p2paccel.h"
#include "p2p_accel.h"

#define DB_SIZE		4096
/* an unused slot of a dedicated doorbell page: the poison word */
#define POISON_OFF	(DB_SIZE - 8)
#define MARK		0x5a5a5a5a00000000ULL
#define POISON		0xdeaddeaddeaddeadULL

static struct p2paccel *acc_open(void)
{
	struct p2paccel *acc = p2paccel_open(NULL);

	if (!acc)
		die("open /dev/p2p_accel0: %s", strerror(errno));
	return acc;
}

static int has_dma_engine(struct p2paccel *acc)
{
	struct p2paccel_info info;

	if (p2paccel_query(acc, &info, sizeof(info)))
		die("query: %s", strerror(errno));
	return !!(info.flags & P2PACCEL_DEV_DMA_RING);
}

/* A debugfs counter of the accelerator ("stats" or the module's "objects"). */
static long long accel_stat(const char *file, const char *name)
{
	char path[128], key[64];
	long long v, found = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/debug/p2p_accel/%s", file);
	f = fopen(path, "r");
	if (!f)
		die("%s: %s", path, strerror(errno));
	while (fscanf(f, "%63s %lld", key, &v) == 2)
		if (!strcmp(key, name))
			found = v;
	fclose(f);
	if (found < 0)
		die("no %s in %s", name, path);
	return found;
}

#define DEV_STAT(name) accel_stat("p2p_accel0/stats", name)
#define OBJ_STAT(name) accel_stat("objects", name)

/* Run @prog to completion; returns its status (0 or -errno). */
static int run_prog(struct p2paccel *acc, struct p2paccel_prog *prog,
		    int timeout_ms, struct p2paccel_status *st)
{
	struct p2paccel_reject rej;
	int ret;

	ret = p2paccel_submit(acc, prog, &rej, sizeof(rej));
	if (ret)
		die("submit: %s (op %u: %s)", strerror(ret), rej.op,
		    p2paccel_reject_str(rej.reason));
	ret = p2paccel_wait(acc, timeout_ms, st, sizeof(*st));
	if (ret)
		die("wait: %s", strerror(ret));
	return st->status;
}

/* A one-ring program. */
static int ring_once(struct p2paccel *acc, uint32_t att, uint64_t off,
		     uint32_t width, uint64_t value, uint32_t flags)
{
	struct p2paccel_prog *prog = p2paccel_prog_new();
	struct p2paccel_status st;
	int ret;

	p2paccel_prog_ring(prog, att, off, width, value, flags);
	ret = run_prog(acc, prog, 10000, &st);
	p2paccel_prog_free(acc, prog);
	return ret;
}

/* ---- info ---- */

static void t_info(void)
{
	struct p2paccel *acc = acc_open();
	struct p2paccel_info info;
	int ret;

	ret = p2paccel_query(acc, &info, sizeof(info));
	check(!ret, "query the accelerator: %s", strerror(ret));
	check(info.flags & P2PACCEL_DEV_IOMMU, "edu's DMA goes through an IOMMU");
	check(info.flags & P2PACCEL_DEV_DMA_RING, "the DMA ring engine is available");
	check(info.dma_mask_bits == 28, "edu's DMA mask is 28 bits (%u)",
	      info.dma_mask_bits);
	printf("# %s: max_ops %u max_steps %llu\n", info.pci_name, info.max_ops,
	       (unsigned long long)info.max_steps);
	p2paccel_close(acc);
}

/* ---- udmabuf: any exporter ---- */

static int make_udmabuf(size_t size, void **map)
{
	struct udmabuf_create c = { .size = size };
	int memfd, dev, fd;

	memfd = memfd_create("accel", MFD_ALLOW_SEALING);
	if (memfd < 0 || ftruncate(memfd, size) ||
	    fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK))
		die("memfd: %s", strerror(errno));
	*map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (*map == MAP_FAILED)
		die("mmap memfd: %s", strerror(errno));
	memset(*map, 0, size);
	dev = open("/dev/udmabuf", O_RDWR);
	if (dev < 0)
		die("/dev/udmabuf: %s", strerror(errno));
	c.memfd = memfd;
	fd = ioctl(dev, UDMABUF_CREATE, &c);
	if (fd < 0)
		die("UDMABUF_CREATE: %s", strerror(errno));
	close(dev);
	close(memfd);
	return fd;
}

static void t_udmabuf(void)
{
	struct p2paccel *acc = acc_open();
	struct p2paccel_attach_attr a;
	long long dma0, store0;
	volatile uint64_t *w;
	uint32_t att;
	void *map;
	int fd, ret;

	fd = make_udmabuf(2 * DB_SIZE, &map);
	w = map;
	ret = p2paccel_attach(acc, fd, &att);
	check(!ret, "attach a udmabuf (any exporter): %s", strerror(ret));
	if (ret)
		goto out;
	ret = p2paccel_query_attach(acc, att, &a, sizeof(a));
	check(!ret && a.state == P2PACCEL_ATTACH_MAPPED && a.size == 2 * DB_SIZE,
	      "attached and mapped for edu (state %u size %llu)", a.state,
	      (unsigned long long)a.size);
	check(a.dma_addr && a.dma_addr < (1ULL << 28),
	      "edu's address of the buffer is an IOVA below its 28-bit mask: %#llx",
	      (unsigned long long)a.dma_addr);

	dma0 = DEV_STAT("dma_rings");
	store0 = DEV_STAT("store_rings");
	ret = ring_once(acc, att, 8, 8, MARK | 1, P2PACCEL_RING_STORE);
	check(!ret && w[1] == (MARK | 1),
	      "store engine: the value landed (%d, %#llx)", ret,
	      (unsigned long long)w[1]);
	check(DEV_STAT("store_rings") == store0 + 1 &&
	      DEV_STAT("dma_rings") == dma0, "counted by the store engine");

	ret = ring_once(acc, att, DB_SIZE + 16, 4, 0x600dd00d,
			P2PACCEL_RING_DMA);
	check(!ret && w[(DB_SIZE + 16) / 8] == 0x600dd00d,
	      "DMA engine: edu's write to the IOVA landed (%d, %#llx)", ret,
	      (unsigned long long)w[(DB_SIZE + 16) / 8]);
	/* No CPU store: only edu's second transfer touched the buffer. */
	check(DEV_STAT("dma_rings") == dma0 + 1 &&
	      DEV_STAT("store_rings") == store0 + 1,
	      "counted by the DMA engine, not the store engine");
	ret = p2paccel_query_attach(acc, att, &a, sizeof(a));
	check(!ret && a.rings == 2 && a.vmapped,
	      "attachment: 2 rings, the store engine's vmap held (%llu, %u)",
	      (unsigned long long)a.rings, a.vmapped);
	ret = p2paccel_detach(acc, att);
	check(!ret, "detach: %s", strerror(ret));
out:
	close(fd);
	munmap(map, 2 * DB_SIZE);
	p2paccel_close(acc);
	check(OBJ_STAT("attachments") == 0 && OBJ_STAT("vmaps") == 0,
	      "no attachment or vmap left");
}

/* ---- rxe: a doorbell QP rung by the accelerator ---- */

struct target {
	struct db_dev d;
	struct ibv_cq *cq;
	struct raw_qp q;
	int fd;			/* the doorbell page's dma-buf */
	void *page2;		/* a second mapping of the page, for the poison check */
};

/* A peer doorbell QP alone on its page, the page exported and mapped again. */
static void target_open(struct target *t, const char *dev, int max_wr)
{
	int err;

	db_dev_open(&t->d, dev);
	t->cq = ibv_create_cq(t->d.v.ctx, 1024, NULL, NULL, 0);
	if (!t->cq)
		die("create cq");
	err = raw_qp_create(&t->d, &t->q, t->cq, RXE_CREATE_QP_DOORBELL_PEER |
			    RXE_CREATE_QP_DOORBELL_DEDICATED, max_wr,
			    sizeof(struct rxe_create_qp_resp));
	if (err)
		die("create doorbell qp: %s", strerror(err));
	raw_qp_connect(&t->q);
	t->fd = ibv_cmd_export_dmabuf_fd(t->d.v.ctx, t->q.db_offset);
	if (t->fd < 0)
		die("export the doorbell page: %s", strerror(errno));
	t->page2 = mmap(NULL, DB_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
			t->d.v.ctx->cmd_fd, t->q.db_offset);
	if (t->page2 == MAP_FAILED)
		die("mmap the doorbell page again: %s", strerror(errno));
}

static void target_close(struct target *t)
{
	if (t->fd >= 0)
		close(t->fd);
	munmap(t->page2, DB_SIZE);
	if (t->q.handle || t->q.sq)
		raw_qp_destroy(&t->q);
	ibv_destroy_cq(t->cq);
	db_dev_close(&t->d);
}

/*
 * @n RDMA WRITE WQEs for the target's QP in a scratch queue laid out like
 * its send queue: template i writes 8 bytes from src i to dst i.
 */
static struct rxe_queue_buf *make_templates(struct target *t, int n)
{
	size_t elem = 1UL << t->q.sq->log2_elem_size;
	struct rxe_queue_buf *tq;
	struct raw_qp fake = t->q;
	uint32_t cnt = 1;
	int i;

	while (cnt < (uint32_t)n)
		cnt <<= 1;
	tq = aligned_alloc(4096, (sizeof(*tq) + cnt * elem + 4095) & ~4095UL);
	memset(tq, 0, sizeof(*tq) + cnt * elem);
	tq->log2_elem_size = t->q.sq->log2_elem_size;
	tq->index_mask = cnt - 1;
	fake.sq = tq;
	fake.prod = 0;
	for (i = 0; i < n; i++) {
		*(uint64_t *)(t->d.v.buf + 8 * i) = MARK | i;
		raw_qp_post_write(&fake, i, 8 * i, 65536 + 8 * i, 8);
	}
	return tq;
}

/*
 * What a program that posts to the target's QP needs: the doorbell
 * attached, @n WQE templates and a flag registered, the QP's send queue
 * set as the program's.
 */
struct poster {
	struct rxe_queue_buf *tq;
	size_t elem;
	uint64_t *flag;
	uint32_t att, tbuf, fbuf;
};

static void poster_setup(struct p2paccel *acc, struct target *t,
			 struct p2paccel_prog *prog, int n, struct poster *p)
{
	struct p2paccel_sq_desc sq = {
		.buf = t->q.sq->data,
		.wqe_size = 1U << t->q.sq->log2_elem_size,
		.wqe_cnt = t->q.sq->index_mask + 1,
		.prod_index = &t->q.sq->producer_index,
		.cons_index = &t->q.sq->consumer_index,
	};

	p->elem = sq.wqe_size;
	p->tq = make_templates(t, n);
	p->flag = aligned_alloc(4096, 4096);
	*p->flag = 0;
	if (p2paccel_attach(acc, t->fd, &p->att) ||
	    p2paccel_reg_buf(acc, p->tq, sizeof(*p->tq) + n * p->elem, 0, &p->tbuf) ||
	    p2paccel_reg_buf(acc, p->flag, 8, 0, &p->fbuf) ||
	    p2paccel_prog_set_sq(acc, prog, &sq, sizeof(sq)))
		die("set up the poster: %s", strerror(errno));
}

/* SQ_POST the next template, RING the QP's slot with the producer index */
static void poster_post_ring(struct target *t, struct p2paccel_prog *prog,
			     struct poster *p, int n, uint32_t engine)
{
	p2paccel_prog_sq_post(prog, p->tbuf, offsetof(struct rxe_queue_buf, data),
			      p->elem, n, 5000000);
	p2paccel_prog_ring(prog, p->att, t->q.db_index * sizeof(struct rxe_db_slot),
			   4, 0, engine | P2PACCEL_RING_SQ_PROD);
}

static void poster_free(struct poster *p)
{
	free(p->tq);
	free(p->flag);
}

static void sends(struct p2paccel *acc, struct target *t, int n, uint32_t engine,
		  const char *what)
{
	struct p2paccel_prog *prog = p2paccel_prog_new();
	struct p2paccel_status st;
	struct ibv_wc wc;
	struct poster p;
	int ret, got, bad = 0, i;

	memset(t->d.v.buf + 65536, 0, 8 * n);
	poster_setup(acc, t, prog, n, &p);
	poster_post_ring(t, prog, &p, n, engine);
	p2paccel_prog_loop(prog, 0, n);
	ret = run_prog(acc, prog, 120000, &st);
	check(!ret && st.rings == (uint64_t)n,
	      "%s: the program posted and rang %d times (status %d, rings %llu)",
	      what, n, ret, (unsigned long long)st.rings);
	got = wait_cq(t->cq, n, 20000, &wc);
	if (got && wc.status != IBV_WC_SUCCESS)
		bad = 1;
	/* and no more than n */
	usleep(200000);
	got += ibv_poll_cq(t->cq, 1, &wc);
	check(got == n && !bad, "%s: exactly %d sends completed (%d)", what, n, got);
	for (i = 0; i < n; i++)
		if (*(uint64_t *)(t->d.v.buf + 65536 + 8 * i) != (MARK | i))
			break;
	check(i == n, "%s: every write's data arrived (%d of %d)", what, i, n);
	p2paccel_prog_free(acc, prog);
	p2paccel_dereg_buf(acc, p.tbuf);
	p2paccel_dereg_buf(acc, p.fbuf);
	p2paccel_detach(acc, p.att);
	t->q.prod = t->q.sq->producer_index;
	poster_free(&p);
}

static void t_sends(void)
{
	struct p2paccel *acc = acc_open();
	struct target t;

	target_open(&t, "rxe0", 16);
	sends(acc, &t, 100, P2PACCEL_RING_STORE, "store engine");
	if (has_dma_engine(acc))
		sends(acc, &t, 4, P2PACCEL_RING_DMA, "edu DMA engine");
	target_close(&t);
	p2paccel_close(acc);
}

/* ---- malformed programs ---- */

struct bad {
	const char *what;
	uint32_t reason;
	struct p2p_accel_op op;	/* after a ring that would leave a mark */
};

static void t_reject(void)
{
	struct p2paccel *acc = acc_open();
	uint32_t att, rbuf, wbuf;
	volatile uint64_t *w;
	void *map;
	uint8_t *mem = aligned_alloc(4096, 8192);
	int fd, i, ret;
	long long rej0;

	memset(mem, 0, 8192);
	fd = make_udmabuf(DB_SIZE, &map);
	w = map;
	if (p2paccel_attach(acc, fd, &att) ||
	    p2paccel_reg_buf(acc, mem, 4096, 0, &rbuf) ||
	    p2paccel_reg_buf(acc, mem + 4096, 4096, P2PACCEL_BUF_WRITE, &wbuf))
		die("setup: %s", strerror(errno));

	struct bad bads[] = {
		{ "unknown opcode", P2P_ACCEL_REJECT_OPCODE, { .opcode = 99 } },
		{ "opcode 0", P2P_ACCEL_REJECT_OPCODE, { .opcode = 0 } },
		{ "reserved field", P2P_ACCEL_REJECT_RESERVED,
		  { .opcode = P2P_ACCEL_OP_DELAY, .reserved = 1 } },
		{ "reserved op field", P2P_ACCEL_REJECT_RESERVED,
		  { .opcode = P2P_ACCEL_OP_DELAY, .delay = { .us = 1, .reserved = { 1 } } } },
		{ "unknown ring flag", P2P_ACCEL_REJECT_RESERVED,
		  { .opcode = P2P_ACCEL_OP_RING, .flags = 0x80,
		    .ring = { .attach = att, .width = 4 } } },
		{ "no such attachment", P2P_ACCEL_REJECT_HANDLE,
		  { .opcode = P2P_ACCEL_OP_RING, .ring = { .attach = 63, .width = 4 } } },
		{ "no such buffer", P2P_ACCEL_REJECT_HANDLE,
		  { .opcode = P2P_ACCEL_OP_WAIT, .wait = { .buf = 60, .width = 4 } } },
		{ "a kernel pointer as a handle", P2P_ACCEL_REJECT_HANDLE,
		  { .opcode = P2P_ACCEL_OP_WAIT,
		    .wait = { .buf = 0xffff8880u, .width = 4 } } },
		{ "ring beyond the attachment", P2P_ACCEL_REJECT_BOUNDS,
		  { .opcode = P2P_ACCEL_OP_RING,
		    .ring = { .attach = att, .width = 8, .offset = DB_SIZE } } },
		{ "ring offset wrapping around", P2P_ACCEL_REJECT_BOUNDS,
		  { .opcode = P2P_ACCEL_OP_RING,
		    .ring = { .attach = att, .width = 8, .offset = -8ULL } } },
		{ "wait beyond the buffer", P2P_ACCEL_REJECT_BOUNDS,
		  { .opcode = P2P_ACCEL_OP_WAIT,
		    .wait = { .buf = rbuf, .width = 4, .offset = 4096 } } },
		{ "misaligned ring", P2P_ACCEL_REJECT_ALIGN,
		  { .opcode = P2P_ACCEL_OP_RING,
		    .ring = { .attach = att, .width = 4, .offset = 2 } } },
		{ "ring width 2", P2P_ACCEL_REJECT_ALIGN,
		  { .opcode = P2P_ACCEL_OP_RING, .ring = { .attach = att, .width = 2 } } },
		{ "32-bit ring of a 64-bit value", P2P_ACCEL_REJECT_ALIGN,
		  { .opcode = P2P_ACCEL_OP_RING,
		    .ring = { .attach = att, .width = 4, .value = 1ULL << 32 } } },
		{ "delay above the limit", P2P_ACCEL_REJECT_LIMIT,
		  { .opcode = P2P_ACCEL_OP_DELAY, .delay = { .us = 1000001 } } },
		{ "wait timeout above the limit", P2P_ACCEL_REJECT_LIMIT,
		  { .opcode = P2P_ACCEL_OP_WAIT,
		    .wait = { .buf = rbuf, .width = 4, .timeout_us = 60000001 } } },
		{ "loop of count 0", P2P_ACCEL_REJECT_LIMIT,
		  { .opcode = P2P_ACCEL_OP_LOOP, .loop = { .target = 0, .count = 0 } } },
		{ "loop to itself", P2P_ACCEL_REJECT_LOOP,
		  { .opcode = P2P_ACCEL_OP_LOOP, .loop = { .target = 1, .count = 2 } } },
		{ "loop target ahead", P2P_ACCEL_REJECT_LOOP,
		  { .opcode = P2P_ACCEL_OP_LOOP, .loop = { .target = 7, .count = 2 } } },
		{ "too many steps", P2P_ACCEL_REJECT_STEPS,
		  { .opcode = P2P_ACCEL_OP_LOOP,
		    .loop = { .target = 0, .count = 1 << 24 } } },
		{ "send-queue post without a queue", P2P_ACCEL_REJECT_NO_SQ,
		  { .opcode = P2P_ACCEL_OP_SQ_POST,
		    .sq_post = { .src_buf = rbuf, .src_count = 1 } } },
		{ "ring of the SQ index without a queue", P2P_ACCEL_REJECT_NO_SQ,
		  { .opcode = P2P_ACCEL_OP_RING, .flags = P2P_ACCEL_RING_SQ_PROD,
		    .ring = { .attach = att, .width = 4 } } },
	};

	rej0 = DEV_STAT("programs_rejected");
	for (i = 0; i < (int)(sizeof(bads) / sizeof(bads[0])); i++) {
		struct p2paccel_prog *prog = p2paccel_prog_new();
		struct p2paccel_reject rej;
		struct p2paccel_status st;

		/* op 0 would store a marker: a partial run would show it */
		p2paccel_prog_ring(prog, att, 0, 8, MARK | i, P2PACCEL_RING_STORE);
		p2paccel_prog_raw(prog, &bads[i].op, sizeof(bads[i].op));
		ret = p2paccel_submit(acc, prog, &rej, sizeof(rej));
		check(ret == EINVAL && rej.reason == bads[i].reason && rej.op == 1,
		      "%s: refused with EINVAL at op %u: %s (%s)", bads[i].what,
		      rej.op, p2paccel_reject_str(rej.reason), strerror(ret));
		if (!ret)
			p2paccel_wait(acc, 10000, &st, sizeof(st));
		p2paccel_prog_free(acc, prog);
	}
	check(w[0] == 0, "no refused program ran any op (%#llx)",
	      (unsigned long long)w[0]);

	/* whole-program checks */
	{
		struct p2paccel_prog *prog = p2paccel_prog_new();
		struct p2paccel_reject rej;
		struct p2paccel_sq_desc sq = {
			.buf = mem, .wqe_size = 32, .wqe_cnt = 3,
			.prod_index = mem + 256, .cons_index = mem + 260,
		};

		ret = p2paccel_submit(acc, prog, &rej, sizeof(rej));
		check(ret == EINVAL && rej.reason == P2P_ACCEL_REJECT_SIZE,
		      "an empty program: EINVAL (%s)", p2paccel_reject_str(rej.reason));
		for (i = 0; i < 257; i++)
			p2paccel_prog_delay(prog, 1);
		ret = p2paccel_submit(acc, prog, &rej, sizeof(rej));
		check(ret == EINVAL && rej.reason == P2P_ACCEL_REJECT_SIZE,
		      "257 ops: EINVAL (%s)", p2paccel_reject_str(rej.reason));
		p2paccel_prog_free(acc, prog);

		/* a send queue in a read-only buffer, and a malformed one */
		prog = p2paccel_prog_new();
		ret = p2paccel_prog_set_sq(acc, prog, &sq, sizeof(sq));
		if (ret)
			die("set_sq: %s", strerror(ret));
		p2paccel_prog_delay(prog, 1);
		ret = p2paccel_submit(acc, prog, &rej, sizeof(rej));
		check(ret == EINVAL && rej.reason == P2P_ACCEL_REJECT_SQ,
		      "a send queue of 3 WQEs (not a power of two): EINVAL (%s)",
		      p2paccel_reject_str(rej.reason));
		p2paccel_prog_free(acc, prog);

		/* nested loops four deep are fine, five are not */
		prog = p2paccel_prog_new();
		p2paccel_prog_delay(prog, 0);
		for (i = 0; i < 5; i++)
			p2paccel_prog_loop(prog, 0, 2);
		ret = p2paccel_submit(acc, prog, &rej, sizeof(rej));
		check(ret == EINVAL && rej.reason == P2P_ACCEL_REJECT_LOOP,
		      "loops nested five deep: EINVAL (%s)",
		      p2paccel_reject_str(rej.reason));
		p2paccel_prog_free(acc, prog);

		/* overlapping loop bodies */
		prog = p2paccel_prog_new();
		p2paccel_prog_delay(prog, 0);
		p2paccel_prog_delay(prog, 0);
		p2paccel_prog_loop(prog, 1, 2);
		p2paccel_prog_loop(prog, 0, 2);
		p2paccel_prog_loop(prog, 2, 2);
		ret = p2paccel_submit(acc, prog, &rej, sizeof(rej));
		check(ret == EINVAL && rej.reason == P2P_ACCEL_REJECT_LOOP,
		      "overlapping loop bodies: EINVAL (%s)",
		      p2paccel_reject_str(rej.reason));
		p2paccel_prog_free(acc, prog);
	}
	check(DEV_STAT("programs_rejected") - rej0 >= (long long)(sizeof(bads) / sizeof(bads[0])),
	      "rejections counted");

	/* a good program still runs afterwards */
	ret = ring_once(acc, att, 0, 8, MARK | 0xff, P2PACCEL_RING_STORE);
	check(!ret && w[0] == (MARK | 0xff), "a valid program runs (%d)", ret);
	p2paccel_close(acc);
	close(fd);
	munmap(map, DB_SIZE);
	free(mem);
}

/* ---- revocation ---- */

/*
 * Wait for the IOMMU's fault report of a write to @iova's page in the
 * kernel log, between expectation markers (the runner allows the DMAR
 * lines there only). Returns 1 if it came.
 */
static int expect_dmar_fault(struct p2paccel *acc, uint32_t att, uint64_t off,
			     uint64_t *iova)
{
	char want[64], rec[1024];
	int kfd, found = 0, ret;
	double end;
	ssize_t n;

	kfd = open("/dev/kmsg", O_RDWR | O_NONBLOCK);
	if (kfd < 0)
		die("/dev/kmsg: %s", strerror(errno));
	lseek(kfd, 0, SEEK_END);
	dprintf(kfd, "rdmap-expect: begin late edu DMA\n");
	ret = p2paccel_stale_dma(acc, att, off, 8, POISON, iova);
	check(!ret, "an edu DMA to the stale IOVA %#llx was issued: %s",
	      (unsigned long long)*iova, strerror(ret));
	snprintf(want, sizeof(want), "fault addr 0x%llx",
		 (unsigned long long)(*iova & ~0xfffULL));
	end = now_us() + 10e6;
	while (!found && now_us() < end) {
		n = read(kfd, rec, sizeof(rec) - 1);
		if (n <= 0) {
			usleep(50000);
			continue;
		}
		rec[n] = 0;
		if (strstr(rec, "DMAR") && strstr(rec, "DMA Write") &&
		    strstr(rec, want))
			found = 1;
	}
	/* the report's other lines follow at once; let them come first */
	usleep(200000);
	dprintf(kfd, "rdmap-expect: end late edu DMA\n");
	close(kfd);
	return found;
}

/* The program a revocation stops: ring, pause, for a long time. */
static void start_ringer(struct p2paccel *acc, uint32_t att, uint32_t engine)
{
	struct p2paccel_prog *prog = p2paccel_prog_new();
	struct p2paccel_reject rej;
	int ret;

	p2paccel_prog_ring(prog, att, POISON_OFF, 8, MARK | 7, engine);
	p2paccel_prog_delay(prog, 1000);
	p2paccel_prog_loop(prog, 0, 1000000);
	ret = p2paccel_submit(acc, prog, &rej, sizeof(rej));
	if (ret)
		die("submit the ringer: %s (%s)", strerror(ret),
		    p2paccel_reject_str(rej.reason));
	p2paccel_prog_free(acc, prog);
}

/* The ringer has rung at least once. */
static void wait_rung(struct p2paccel *acc, uint32_t att)
{
	struct p2paccel_attach_attr a;
	double end = now_us() + 20e6;

	do {
		if (p2paccel_query_attach(acc, att, &a, sizeof(a)))
			die("query attach: %s", strerror(errno));
		if (a.rings)
			return;
		usleep(10000);
	} while (now_us() < end);
	die("the ringer never rang");
}

/* After the revocation: status, events, the late DMA. */
static void check_revoked(struct p2paccel *acc, uint32_t att, int evfd,
			  const char *what, volatile uint64_t *poison)
{
	struct p2paccel_attach_attr a;
	struct p2paccel_status st;
	struct pollfd pfd = { .fd = p2paccel_fd(acc), .events = POLLPRI };
	uint64_t handles = 0, cnt = 0, iova = 0, before = 0;
	int ret, faulted;

	ret = p2paccel_wait(acc, 20000, &st, sizeof(st));
	check(!ret && st.status == -ENODEV,
	      "%s: the program stopped with ENODEV (%s, status %d)", what,
	      strerror(ret), st.status);
	ret = poll(&pfd, 1, 5000);
	check(ret == 1 && (pfd.revents & POLLPRI), "%s: poll says POLLPRI", what);
	ret = read(evfd, &cnt, sizeof(cnt));
	check(ret == 8 && cnt >= 1, "%s: the eventfd counted it (%llu)", what,
	      (unsigned long long)cnt);
	ret = p2paccel_get_revoked(acc, &handles);
	check(!ret && (handles & (1ULL << att)), "%s: handle %u reported revoked",
	      what, att);
	ret = p2paccel_query_attach(acc, att, &a, sizeof(a));
	check(!ret && a.state == P2PACCEL_ATTACH_REVOKED && !a.vmapped,
	      "%s: attachment revoked, no kernel mapping left (state %u vmapped %u)",
	      what, a.state, a.vmapped);
	ret = ring_once(acc, att, POISON_OFF, 8, 1, P2PACCEL_RING_STORE);
	check(ret == -ENODEV, "%s: a new ring fails with ENODEV (%d)", what, ret);
	if (poison)
		before = *poison;
	faulted = expect_dmar_fault(acc, att, POISON_OFF, &iova);
	check(faulted, "%s: the late edu DMA faulted in the IOMMU (DMAR fault at %#llx)",
	      what, (unsigned long long)iova);
	if (poison)
		check(*poison == before && before != POISON,
		      "%s: poison check: the late DMA did not land (%#llx)", what,
		      (unsigned long long)*poison);
}

static void revoke_setup(struct p2paccel **acc, int *evfd)
{
	*acc = acc_open();
	*evfd = eventfd(0, EFD_NONBLOCK);
	if (*evfd < 0 || p2paccel_set_eventfd(*acc, *evfd))
		die("eventfd: %s", strerror(errno));
}

/*
 * A doorbell QP of rxe0 whose page export @acc attached and edu rings (DMA
 * engine) in a loop. Returns the poison word, seen through a mapping of
 * the page: edu's rings land there, the control for the poison check.
 */
static volatile uint64_t *edu_ringing(struct p2paccel *acc, struct target *t,
				      uint32_t *att, const char *what)
{
	volatile uint64_t *poison;

	target_open(t, "rxe0", 16);
	poison = (uint64_t *)((char *)t->page2 + POISON_OFF);
	if (p2paccel_attach(acc, t->fd, att))
		die("attach: %s", strerror(errno));
	start_ringer(acc, *att, P2PACCEL_RING_DMA);
	wait_rung(acc, *att);
	check(*poison == (MARK | 7), "%s: edu's ring landed in the page (%#llx)",
	      what, (unsigned long long)*poison);
	return poison;
}

static void t_revoke_destroy(void)
{
	struct p2paccel *acc;
	struct target t;
	volatile uint64_t *poison;
	uint32_t att;
	int evfd, err, ret;

	revoke_setup(&acc, &evfd);
	poison = edu_ringing(acc, &t, &att, "QP destroy");
	err = raw_qp_destroy(&t.q);
	check(!err, "QP destroyed while edu rings: %s", strerror(err));
	memset(&t.q, 0, sizeof(t.q));
	check_revoked(acc, att, evfd, "QP destroy", poison);
	{
		uint64_t handles = 0;
		uint32_t att2;

		ret = p2paccel_attach(acc, t.fd, &att2);
		check(ret == ENODEV, "attaching the revoked export fails with ENODEV (%s)",
		      strerror(ret));
		ret = p2paccel_get_revoked(acc, &handles);
		check(!ret && !handles, "and reports no revocation event (%#llx)",
		      (unsigned long long)handles);
	}
	target_close(&t);
	close(evfd);
	p2paccel_close(acc);
}

/* A doorbell export of a child process, kept open until it is killed. */
static int export_raw_qp(void)
{
	static struct target t;

	target_open(&t, "rxe0", 16);
	return t.fd;
}

/* The CPU proxy's shadow doorbell, of a QP made through libibverbs. */
static int export_proxy_qp(void)
{
	static struct vt_dev d;
	static struct vt_qp q;
	struct ibv_peer_db_dmabuf db;
	int ret;

	vt_dev_open(&d, "rxe0");
	ret = vt_qp_create(&d, &q, IBV_PEER_QP_STAGED | IBV_PEER_QP_PROXY, 64);
	if (ret)
		die("ibv_peer_create_qp(IBV_PEER_QP_PROXY): %s", strerror(ret));
	ret = ibv_peer_export_db(q.qp, IBV_PEER_EXPORT_EXCLUSIVE, &db, sizeof(db));
	if (ret)
		die("ibv_peer_export_db: %s", strerror(ret));
	if (!(db.flags & IBV_PEER_DMABUF_REVOCABLE))
		die("the proxy's shadow doorbell is not the kernel's (flags %#x)",
		    db.flags);
	return db.fd;
}

/*
 * The exporter is another process; it sends its export (made by @export)
 * and is killed.
 */
static void t_revoke_kill(int (*export)(void), const char *what)
{
	struct p2paccel *acc;
	char c = 0, cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	int sv[2], evfd, fd, status;
	uint32_t att;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		die("socketpair");
	pid = fork();
	if (!pid) {
		int efd;

		close(sv[0]);
		efd = export();
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &efd, sizeof(int));
		if (sendmsg(sv[1], &msg, 0) != 1)
			_exit(2);
		pause();
		_exit(0);
	}
	close(sv[1]);
	if (recvmsg(sv[0], &msg, 0) != 1 || !(cm = CMSG_FIRSTHDR(&msg)))
		die("no export from the child");
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	revoke_setup(&acc, &evfd);
	if (p2paccel_attach(acc, fd, &att))
		die("attach: %s", strerror(errno));
	/* the store engine this time: its vmap must go with the revocation */
	start_ringer(acc, att, P2PACCEL_RING_STORE);
	wait_rung(acc, att);
	kill(pid, SIGKILL);
	check(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status),
	      "exporter killed while the accelerator rings");
	check_revoked(acc, att, evfd, what, NULL);
	close(fd);
	close(sv[0]);
	close(evfd);
	p2paccel_close(acc);
}

static void t_revoke_linkdel(const char *dev)
{
	struct p2paccel *acc;
	struct target t;
	char cmd[128];
	uint32_t att;
	int evfd, ret;

	revoke_setup(&acc, &evfd);
	target_open(&t, dev, 16);
	if (p2paccel_attach(acc, t.fd, &att))
		die("attach: %s", strerror(errno));
	start_ringer(acc, att, P2PACCEL_RING_DMA);
	wait_rung(acc, att);
	snprintf(cmd, sizeof(cmd), "rdma link del %s", dev);
	ret = system(cmd);
	check(ret == 0, "%s while edu rings: status %d", cmd, ret);
	check_revoked(acc, att, evfd, "rdma link del", NULL);
	/* the context is disassociated: every verb now fails, but it closes */
	close(t.fd);
	close(evfd);
	p2paccel_close(acc);
	/* the device is gone: no clean teardown of t */
	printf("# revoke-linkdel: %d tests, %d failed\n", tests, failed);
	exit(failed ? 1 : 0);
}

/* ---- the CPU proxy's shadow doorbell ---- */

/* Wait until edu's ringer (start_ringer()) has landed in @word. */
static void wait_landed(volatile uint64_t *word)
{
	double end = now_us() + 20e6;

	while (*word != (MARK | 7))
		if (now_us() > end)
			die("the ringer never landed");
		else
			usleep(10000);
}

/*
 * A QP whose doorbell libibverbs' CPU proxy stands in for, forced with
 * IBV_PEER_QP_PROXY (our rxe could ring directly; the proxy is what any
 * other provider gets): the accelerator imports the shadow doorbell's
 * dma-buf (ibv_peer_export_db()) and rings it n times by edu DMA and n
 * times by store, for 2n + 2 staged sends. Then the QP is destroyed while
 * edu rings the import by DMA.
 * @kernel: the shadow is the kernel's (UVERBS_OBJECT_SHADOW_DB, on our
 * kernel), revoked with the QP as a real doorbell is (revoke-destroy).
 * Else it is a system-heap dma-buf (Debian's kernel), which has no
 * revocation: the accelerator is not told, its rings land in the orphaned
 * page, which stays allocated while imported, and reach no QP (docs/api.md,
 * The CPU proxy, Teardown); each difference from a real doorbell is
 * checked, so that a change of it shows.
 */
static void t_proxy(int n, bool kernel)
{
	struct p2paccel_attach_attr a;
	struct ibv_peer_db_caps caps;
	struct ibv_peer_db_dmabuf db;
	struct ibv_peer_sq_attr sq;
	struct pollfd pfd = { .events = POLLPRI };
	struct p2paccel_status st;
	volatile uint64_t *poison;
	volatile uint32_t *shadow;
	uint64_t handles = 0, cnt = 0, rings;
	uint32_t att, prod0, last, mask;
	struct p2paccel *acc;
	struct vt_dev d;
	struct vt_qp q;
	long long rings0;
	int evfd, ret, got, i, k;
	double end;

	revoke_setup(&acc, &evfd);
	vt_dev_open(&d, "rxe0");
	ret = vt_qp_create(&d, &q, IBV_PEER_QP_STAGED | IBV_PEER_QP_PROXY, 64);
	if (ret)
		die("ibv_peer_create_qp(IBV_PEER_QP_PROXY): %s", strerror(ret));
	vt_qp_connect(&q);
	ret = ibv_peer_probe_db(q.qp, NULL, &caps, sizeof(caps));
	check(!ret && caps.method == IBV_PEER_DB_METHOD_PROXY &&
	      caps.backing == IBV_PEER_DB_BACKING_HOST,
	      "proxy: the probe says %s, in host memory (%s)",
	      ibv_peer_db_method_str(caps.method), strerror(ret));
	ret = ibv_peer_query_sq(q.qp, &sq, sizeof(sq));
	if (ret)
		die("ibv_peer_query_sq: %s", strerror(ret));
	check((sq.flags & IBV_PEER_SQ_PROXY) && sq.db_width == 4 &&
	      sq.db_value == IBV_PEER_DB_VALUE_PROD_INDEX &&
	      sq.wqe_cnt > 2 * (uint32_t)n + 2,
	      "proxy: the shadow doorbell takes the 4-byte producer index of %u entries",
	      sq.wqe_cnt);
	mask = sq.wqe_cnt - 1;
	ret = ibv_peer_export_db(q.qp, IBV_PEER_EXPORT_EXCLUSIVE, &db, sizeof(db));
	if (ret)
		die("ibv_peer_export_db: %s", strerror(ret));
	if (kernel) {
		check(db.flags == (IBV_PEER_DMABUF_DEDICATED |
				   IBV_PEER_DMABUF_WRITE_ONLY |
				   IBV_PEER_DMABUF_REVOCABLE) && !db.offset,
		      "proxy: the kernel's shadow doorbell: dedicated, write-only, revocable (flags %#x)",
		      db.flags);
		/* the proxy's own mapping: gone with the QP */
		shadow = sq.db;
	} else {
		check(db.flags == IBV_PEER_DMABUF_DEDICATED && !db.offset,
		      "proxy: a heap shadow doorbell: dedicated, not revocable (flags %#x)",
		      db.flags);
		/* the CPU's view of what edu writes; it keeps the page, as edu does */
		shadow = mmap(NULL, db.length, PROT_READ | PROT_WRITE, MAP_SHARED,
			      db.fd, 0);
		if (shadow == MAP_FAILED)
			die("mmap the shadow doorbell: %s", strerror(errno));
	}
	poison = (volatile uint64_t *)((char *)shadow + POISON_OFF);
	ret = p2paccel_attach(acc, db.fd, &att);
	if (ret)
		die("the accelerator imports the shadow doorbell: %s", strerror(ret));
	ret = p2paccel_query_attach(acc, att, &a, sizeof(a));
	check(!ret && a.state == P2PACCEL_ATTACH_MAPPED && a.dma_addr &&
	      a.dma_addr < (1ULL << 28),
	      "proxy: the shadow doorbell is mapped for edu at IOVA %#llx",
	      (unsigned long long)a.dma_addr);

	/*
	 * 2n + 2 staged; edu rings n times by DMA, then n times by store
	 * (through the vmap), one more send each ring
	 */
	prod0 = __atomic_load_n((uint32_t *)sq.prod_index, __ATOMIC_ACQUIRE);
	memset(d.buf + 65536, 0, 8 * (2 * n + 2));
	for (i = 0; i < 2 * n + 2; i++) {
		*(uint64_t *)(d.buf + 8 * i) = MARK | i;
		ret = vt_post_write(&q, i, 8 * i, 65536 + 8 * i, 8);
		if (ret)
			die("stage send %d: %s", i, strerror(ret));
	}
	check(vt_wait_cq(q.cq, 1, 300, NULL) == 0,
	      "proxy: %d staged sends wait for a ring", 2 * n + 2);
	for (k = 0; k < 2; k++) {
		uint32_t engine = k ? P2PACCEL_RING_STORE : P2PACCEL_RING_DMA;
		const char *stat = k ? "store_rings" : "dma_rings";
		const char *how = k ? "store" : "DMA";
		struct p2paccel_prog *prog = p2paccel_prog_new();

		rings0 = DEV_STAT(stat);
		for (i = k * n + 1; i <= (k + 1) * n; i++)
			p2paccel_prog_ring(prog, att, db.offset, 4,
					   (prod0 + i) & mask, engine);
		ret = run_prog(acc, prog, 60000, &st);
		p2paccel_prog_free(acc, prog);
		check(!ret && st.rings == (uint64_t)n && DEV_STAT(stat) == rings0 + n,
		      "proxy: edu rang the shadow doorbell %d times by %s (status %d, rings %llu)",
		      n, how, ret, (unsigned long long)st.rings);
		last = le32toh(shadow[db.offset / 4]);
		check(last == ((prod0 + (k + 1) * n) & mask),
		      "proxy: the last %s ring is in the shadow (%u)", how, last);
		got = vt_wait_cq(q.cq, n, 20000, NULL);
		got += vt_wait_cq(q.cq, 1, 500, NULL);
		check(got == n, "proxy: %d %s rings gave exactly %d sends (%d)", n,
		      how, n, got);
	}
	for (i = 0; i < 2 * n + 2; i++)
		if (*(volatile uint64_t *)(d.buf + 65536 + 8 * i) !=
		    (i < 2 * n ? (MARK | i) : 0))
			break;
	check(i == 2 * n + 2,
	      "proxy: the %d rung writes arrived, the 2 unrung did not (%d)", 2 * n, i);

	/* the QP goes while edu rings an unused word of its shadow page */
	start_ringer(acc, att, P2PACCEL_RING_DMA);
	wait_landed(poison);
	ret = ibv_destroy_qp(q.qp);
	check(!ret, "proxy: QP destroyed while edu rings its shadow doorbell: %s",
	      strerror(ret));
	if (!ret)
		q.qp = NULL;
	if (kernel) {
		uint32_t att2;

		/* as revoke-destroy; the page is not ours to look at any more */
		check_revoked(acc, att, evfd, "proxy: QP destroy", NULL);
		ret = p2paccel_attach(acc, db.fd, &att2);
		check(ret == ENODEV, "proxy: attaching the revoked shadow fails with ENODEV (%s)",
		      strerror(ret));
		close(db.fd);
		ret = p2paccel_detach(acc, att);
		check(!ret, "proxy: the accelerator lets go of the revoked import: %s",
		      strerror(ret));
		check(OBJ_STAT("attachments") == 0 && OBJ_STAT("vmaps") == 0,
		      "proxy: no attachment or vmap left");
		goto out;
	}
	/* cleared after the destroy: what lands from now on is a late ring */
	*poison = 0;
	ret = p2paccel_query_attach(acc, att, &a, sizeof(a));
	if (ret)
		die("query attach: %s", strerror(ret));
	rings = a.rings;
	/* unlike revoke-destroy: nobody tells the accelerator */
	ret = p2paccel_wait(acc, 1000, &st, sizeof(st));
	check(ret == ETIME, "proxy: not revoked: the program goes on (%s)",
	      strerror(ret));
	pfd.fd = p2paccel_fd(acc);
	check(poll(&pfd, 1, 0) == 0, "proxy: not revoked: no POLLPRI");
	check(read(evfd, &cnt, sizeof(cnt)) < 0 && errno == EAGAIN,
	      "proxy: not revoked: the eventfd did not count");
	ret = p2paccel_get_revoked(acc, &handles);
	check(!ret && !handles, "proxy: not revoked: no handle reported (%#llx)",
	      (unsigned long long)handles);
	/* edu rings on: wait for a ring after the destroy, as wait_rung() */
	end = now_us() + 20e6;
	do {
		ret = p2paccel_query_attach(acc, att, &a, sizeof(a));
		if (ret || a.rings > rings || a.state != P2PACCEL_ATTACH_MAPPED)
			break;
		usleep(10000);
	} while (now_us() < end);
	check(!ret && a.state == P2PACCEL_ATTACH_MAPPED && a.rings > rings,
	      "proxy: the attachment stays mapped and edu rings on (state %u, %llu rings after the destroy)",
	      a.state, (unsigned long long)(a.rings - rings));
	/* the page is alive while imported: edu's rings land, in no freed memory */
	check(*poison == (MARK | 7),
	      "proxy: edu's rings after the destroy land in the orphaned page (%#llx)",
	      (unsigned long long)*poison);
	ret = p2paccel_cancel(acc);
	ret = ret ?: p2paccel_wait(acc, 10000, &st, sizeof(st));
	check(!ret && st.status == -ECANCELED, "proxy: the ringer cancelled (%s, %d)",
	      strerror(ret), st.status);

	/* a ring that would release the 2 staged sends reaches no QP */
	ret = ring_once(acc, att, db.offset, 4, (prod0 + 2 * n + 2) & mask,
			P2PACCEL_RING_DMA);
	last = le32toh(shadow[db.offset / 4]);
	check(!ret && last == ((prod0 + 2 * n + 2) & mask),
	      "proxy: a ring after the destroy lands in the shadow (%d, %u)", ret, last);
	check(vt_wait_cq(q.cq, 1, 500, NULL) == 0 &&
	      *(volatile uint64_t *)(d.buf + 65536 + 16 * n) == 0,
	      "proxy: and sends nothing: the staged sends went with the QP");

	ret = p2paccel_detach(acc, att);
	check(!ret, "proxy: the accelerator lets go of the orphaned page: %s",
	      strerror(ret));
	munmap((void *)shadow, db.length);
	close(db.fd);
	check(OBJ_STAT("attachments") == 0 && OBJ_STAT("vmaps") == 0,
	      "proxy: no attachment or vmap left");
out:
	vt_qp_destroy(&q);
	vt_dev_close(&d);
	close(evfd);
	p2paccel_close(acc);
}

/* ---- PCI unbind ---- */

#define ACCEL_DRIVER "/sys/bus/pci/drivers/p2p_accel"

/* The PCI address of /dev/p2p_accel0's function. */
static void accel_bdf(char *bdf, size_t len)
{
	char path[256], *base;
	ssize_t n;

	n = readlink("/sys/class/misc/p2p_accel0/device", path, sizeof(path) - 1);
	if (n < 0)
		die("the accelerator's PCI function: %s", strerror(errno));
	path[n] = 0;
	base = strrchr(path, '/');
	if (snprintf(bdf, len, "%s", base ? base + 1 : path) >= (int)len)
		die("PCI address too long: %s", path);
}

/* Write @s to a sysfs file; returns 0 or the errno of the write. */
static int sysfs_write(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY), ret = 0;

	if (fd < 0)
		return errno;
	if (write(fd, s, strlen(s)) < 0)
		ret = errno;
	close(fd);
	return ret;
}

/* Whether some dma-buf lists the device @bdf among its attachments. */
static int attached_somewhere(const char *bdf)
{
	FILE *f = fopen("/sys/kernel/debug/dma_buf/bufinfo", "r");
	char line[256];
	int found = 0;

	if (!f)
		die("dma_buf bufinfo: %s", strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (strstr(line, bdf))
			found = 1;
	fclose(f);
	return found;
}

static void t_unplug(void)
{
	struct pollfd pfd = { .events = POLLIN };
	volatile uint64_t *poison;
	struct p2paccel_status st;
	struct p2paccel *acc;
	struct target t;
	uint32_t att, att2;
	char bdf[64];
	int evfd, ret, err, i;

	accel_bdf(bdf, sizeof(bdf));
	revoke_setup(&acc, &evfd);
	poison = edu_ringing(acc, &t, &att, "unbind");
	check(attached_somewhere(bdf), "unbind: %s is attached to the doorbell's dma-buf",
	      bdf);

	/* the rdmap_bounded limit of the caller is the hang check */
	ret = sysfs_write(ACCEL_DRIVER "/unbind", bdf);
	check(!ret, "unbind %s while edu rings: %s", bdf, strerror(ret));
	ret = p2paccel_wait(acc, 20000, &st, sizeof(st));
	check(!ret && st.status == -ENODEV,
	      "unbind: the program stopped with ENODEV (%s, status %d)",
	      strerror(ret), st.status);
	pfd.fd = p2paccel_fd(acc);
	ret = poll(&pfd, 1, 5000);
	check(ret == 1 && (pfd.revents & POLLHUP), "unbind: poll says POLLHUP (%#x)",
	      pfd.revents);
	ret = p2paccel_attach(acc, t.fd, &att2);
	check(ret == ENODEV, "unbind: attaching now fails with ENODEV (%s)",
	      strerror(ret));
	check(!attached_somewhere(bdf), "unbind: %s is attached to no dma-buf", bdf);
	/* longer than an edu DMA takes (about 100 ms): none lands any more */
	*poison = POISON;
	usleep(500000);
	check(*poison == POISON, "unbind: no ring lands after it (%#llx)",
	      (unsigned long long)*poison);

	err = raw_qp_destroy(&t.q);
	check(!err, "unbind: the exporter revokes its export after it (QP destroy: %s)",
	      strerror(err));
	memset(&t.q, 0, sizeof(t.q));
	target_close(&t);
	close(evfd);
	p2paccel_close(acc);

	/* the last file is closed: the function binds again as p2p_accel0 */
	ret = sysfs_write(ACCEL_DRIVER "/bind", bdf);
	check(!ret, "bind %s again: %s", bdf, strerror(ret));
	for (i = 0; i < 50 && !(acc = p2paccel_open(NULL)); i++)
		usleep(100000);
	check(acc && has_dma_engine(acc), "/dev/p2p_accel0 is back, with edu DMA");
	if (acc)
		p2paccel_close(acc);
}

/* ---- isolation ---- */

static void t_isolation(void)
{
	struct p2paccel *acc = acc_open(), *acc2;
	uint32_t att;
	void *map;
	int fd, sv[2], status, ret;
	pid_t pid;

	fd = make_udmabuf(DB_SIZE, &map);
	if (p2paccel_attach(acc, fd, &att))
		die("attach: %s", strerror(errno));
	if (pipe(sv))
		die("pipe");
	pid = fork();
	if (!pid) {
		struct p2paccel_prog *prog = p2paccel_prog_new();
		struct p2paccel_reject rej;
		struct p2paccel_attach_attr a;
		int r1, r2, r3;

		/* the parent's context, inherited: refused outright */
		r1 = p2paccel_query_attach(acc, att, &a, sizeof(a));
		/* our own context: the parent's handle means nothing here */
		acc2 = acc_open();
		p2paccel_prog_ring(prog, att, 0, 8, POISON, P2PACCEL_RING_STORE);
		r2 = p2paccel_submit(acc2, prog, &rej, sizeof(rej));
		r3 = p2paccel_detach(acc2, att);
		_exit((r1 == EACCES ? 0 : 1) |
		      (r2 == EINVAL && rej.reason == P2P_ACCEL_REJECT_HANDLE ? 0 : 2) |
		      (r3 == ENOENT ? 0 : 4));
	}
	ret = waitpid(pid, &status, 0) == pid && WIFEXITED(status) ?
		WEXITSTATUS(status) : 255;
	check(!(ret & 1), "another process cannot use an inherited context (EACCES)");
	check(!(ret & 2), "another context's program cannot name our attachment");
	check(!(ret & 4), "another context cannot detach our attachment");
	check(*(volatile uint64_t *)map == 0, "nothing of the other process landed");
	ret = ring_once(acc, att, 0, 8, MARK, P2PACCEL_RING_STORE);
	check(!ret && *(volatile uint64_t *)map == MARK,
	      "our attachment still works (%d)", ret);
	p2paccel_close(acc);
	close(fd);
	munmap(map, DB_SIZE);
	close(sv[0]);
	close(sv[1]);
}

/* ---- cycles ---- */

static int count_fds(void)
{
	char path[64];
	int n = 0, i;

	for (i = 0; i < 1024; i++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", i);
		if (!access(path, F_OK))
			n++;
	}
	return n;
}

static long module_refcnt(const char *m)
{
	char path[64];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/%s/refcnt", m);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static long vm_pinned_kb(void)
{
	char line[128];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPin: %ld", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

static void t_cycles(int n)
{
	long ref_accel = 0, ref_uverbs = 0, ref_rxe = 0, pin = 0;
	int fds = 0, i, bad = 0;
	struct target t;

	/* a warm-up cycle, so that one-time allocations are not counted */
	for (i = -1; i < n; i++) {
		struct p2paccel *acc;
		uint32_t att, flag_buf;
		uint64_t *flag;
		struct p2paccel_prog *prog;
		struct p2paccel_status st;
		int ret;

		/* the start values: nothing of ours open */
		if (!i) {
			fds = count_fds();
			ref_accel = module_refcnt("p2p_accel");
			ref_uverbs = module_refcnt("ib_uverbs");
			ref_rxe = module_refcnt("rdma_rxe");
			pin = vm_pinned_kb();
		}
		acc = acc_open();
		flag = aligned_alloc(4096, 4096);
		prog = p2paccel_prog_new();
		*flag = 1;
		target_open(&t, "rxe0", 16);
		if (p2paccel_attach(acc, t.fd, &att) ||
		    p2paccel_reg_buf(acc, flag, 8, 0, &flag_buf))
			die("cycle %d: %s", i, strerror(errno));
		p2paccel_prog_wait(prog, flag_buf, 0, 8, 1, ~0ULL, 1000000);
		p2paccel_prog_ring(prog, att, POISON_OFF, 8, MARK, P2PACCEL_RING_STORE);
		ret = run_prog(acc, prog, 10000, &st);
		if (ret) {
			bad++;
			printf("# cycle %d: status %d\n", i, ret);
		}
		/* revoke: the QP goes while attached and vmapped */
		raw_qp_destroy(&t.q);
		memset(&t.q, 0, sizeof(t.q));
		ret = ring_once(acc, att, POISON_OFF, 8, MARK, P2PACCEL_RING_STORE);
		if (ret != -ENODEV) {
			bad++;
			printf("# cycle %d: ring after revoke %d\n", i, ret);
		}
		p2paccel_prog_free(acc, prog);
		p2paccel_close(acc);
		target_close(&t);
		free(flag);
	}
	check(!bad, "%d attach/run/revoke cycles ran as expected", n);
	check(count_fds() == fds, "file descriptors back to %d (%d)", fds, count_fds());
	printf("# start: p2p_accel %ld, ib_uverbs %ld, rdma_rxe %ld, VmPin %ld kB, %d fds\n",
	       ref_accel, ref_uverbs, ref_rxe, pin, fds);
	check(module_refcnt("p2p_accel") == ref_accel &&
	      module_refcnt("ib_uverbs") == ref_uverbs &&
	      module_refcnt("rdma_rxe") == ref_rxe,
	      "module references back (p2p_accel %ld, ib_uverbs %ld, rdma_rxe %ld)",
	      module_refcnt("p2p_accel"), module_refcnt("ib_uverbs"),
	      module_refcnt("rdma_rxe"));
	check(vm_pinned_kb() == pin, "pinned memory back to %ld kB (%ld)", pin,
	      vm_pinned_kb());
	check(OBJ_STAT("attachments") == 0 && OBJ_STAT("vmaps") == 0 &&
	      OBJ_STAT("buffers") == 0 && OBJ_STAT("pinned_pages") == 0 &&
	      OBJ_STAT("programs") == 0,
	      "the module holds no attachment, vmap, buffer or program");
}


/* ---- the demo: a GPU-initiated put ---- */

/*
 * The CPU builds nothing and rings nothing: it submits the device program,
 * sets a flag, and checks the remote data. The accelerator waits for the
 * flag, then copies 1000 RDMA WRITE WQEs into a staged QP's send queue and
 * rings its doorbell after each (a staged QP sends only what a ring
 * released: docs/rxe-doorbell.md, Staged sends).
 */
/*
 * The demo. The QP is made the way an application makes it, through
 * libibverbs and the peer verbs: ibv_peer_create_qp() staged (posting does
 * not send, a ring releases) on a doorbell page of its own,
 * ibv_peer_query_sq() (db_qp_try_create()) for the queue the accelerator
 * posts into, ibv_peer_export_db() for the doorbell it rings; the WQE
 * templates come from <infiniband/rxe_peer_wqe.h>.
 */
static void t_put(int n)
{
	struct p2paccel *acc = acc_open();
	struct p2paccel_prog *prog = p2paccel_prog_new();
	struct ibv_peer_db_dmabuf db = {};
	struct p2paccel_sq_desc sqd = {};
	struct p2paccel_status st;
	struct p2paccel_reject rej;
	struct rxe_peer_sq tsq;
	struct rxe_send_wqe *w;
	uint32_t tprod = 0, tcons = 0, cnt = 1, att, tbuf, fbuf;
	size_t tsize;
	struct ibv_wc wc;
	struct ibv_cq *cq;
	struct vt_dev d;
	struct db_qp q;
	uint64_t *flag;
	void *tmpl;
	int ret, got, i;

	vt_dev_open(&d, "rxe0");
	cq = ibv_create_cq(d.ctx, 2 * n + 16, NULL, NULL, 0);
	if (!cq)
		die("create cq: %s", strerror(errno));
	ret = db_qp_try_create(&d, &q, cq, IBV_PEER_QP_STAGED |
			       IBV_PEER_QP_DEDICATED_DB, 64);
	if (ret)
		die("ibv_peer_create_qp: %s", strerror(ret));
	check((q.sq.flags & IBV_PEER_SQ_STAGED) &&
	      (q.sq.flags & IBV_PEER_SQ_DEDICATED_DB) && q.sq.db,
	      "put: ibv_peer_create_qp made a staged QP with a doorbell page of its own (flags %#x)",
	      q.sq.flags);
	db_qp_connect(&q);
	ret = ibv_peer_export_db(q.v.qp, IBV_PEER_EXPORT_EXCLUSIVE, &db,
				 sizeof(db));
	if (ret)
		die("ibv_peer_export_db: %s", strerror(ret));

	/* n RDMA WRITE templates, one after the other: i writes word i */
	while (cnt <= (uint32_t)n)
		cnt <<= 1;
	tsize = ((size_t)cnt * q.sq.wqe_size + 4095) & ~4095UL;
	tmpl = aligned_alloc(4096, tsize);
	if (!tmpl)
		die("templates");
	memset(tmpl, 0, tsize);
	memset(d.buf + 65536, 0, 8 * n);
	rxe_peer_sq_init(&tsq, tmpl, q.sq.wqe_size, cnt, &tprod, &tcons, NULL);
	for (i = 0; i < n; i++) {
		*(uint64_t *)(d.buf + 8 * i) = MARK | i;
		w = rxe_peer_sq_next(&tsq);
		rxe_peer_wqe_start(w, IBV_WR_RDMA_WRITE, i, IBV_SEND_SIGNALED);
		rxe_peer_wqe_set_rdma(w, (uintptr_t)d.buf + 65536 + 8 * i,
				      d.mr->rkey);
		rxe_peer_wqe_add_sge(w, (uintptr_t)d.buf + 8 * i, 8, d.mr->lkey);
		rxe_peer_sq_produce(&tsq, 1);
	}

	/* the QP's send queue, its doorbell and a flag, for the accelerator */
	sqd.buf = q.sq.buf;
	sqd.wqe_size = q.sq.wqe_size;
	sqd.wqe_cnt = q.sq.wqe_cnt;
	sqd.prod_index = q.sq.prod_index;
	sqd.cons_index = q.sq.cons_index;
	flag = aligned_alloc(4096, 4096);
	if (!flag)
		die("flag");
	*flag = 0;
	if (p2paccel_attach(acc, db.fd, &att) ||
	    p2paccel_reg_buf(acc, tmpl, (size_t)n * q.sq.wqe_size, 0, &tbuf) ||
	    p2paccel_reg_buf(acc, flag, 8, 0, &fbuf) ||
	    p2paccel_prog_set_sq(acc, prog, &sqd, sizeof(sqd)))
		die("set up the accelerator: %s", strerror(errno));
	close(db.fd);	/* the accelerator's attachment holds the buffer */

	p2paccel_prog_wait(prog, fbuf, 0, 8, 1, ~0ULL, 10000000);
	i = p2paccel_prog_here(prog);
	p2paccel_prog_sq_post(prog, tbuf, 0, q.sq.wqe_size, n, 5000000);
	p2paccel_prog_ring(prog, att, db.offset, 4, 0,
			   P2PACCEL_RING_STORE | P2PACCEL_RING_SQ_PROD);
	p2paccel_prog_loop(prog, i, n);
	ret = p2paccel_submit(acc, prog, &rej, sizeof(rej));
	check(!ret, "put: the program was accepted: %s (%s)", strerror(ret),
	      p2paccel_reject_str(rej.reason));
	usleep(100000);
	got = ibv_poll_cq(cq, 1, &wc);
	check(got == 0, "put: nothing is sent before the flag");
	__atomic_store_n(flag, 1, __ATOMIC_RELEASE);	/* all the CPU does */
	ret = p2paccel_wait(acc, 120000, &st, sizeof(st));
	check(!ret && !st.status && st.rings == (uint64_t)n,
	      "put: the accelerator built and rang %d writes (status %d, rings %llu)",
	      n, st.status, (unsigned long long)st.rings);
	got = wait_cq(cq, n, 30000, &wc);
	check(got == n && wc.status == IBV_WC_SUCCESS,
	      "put: %d writes completed (%d)", n, got);
	for (i = 0; i < n; i++)
		if (*(volatile uint64_t *)(d.buf + 65536 + 8 * i) != (MARK | i))
			break;
	check(i == n, "put: the remote data is all there (%d of %d)", i, n);
	p2paccel_prog_free(acc, prog);
	p2paccel_close(acc);
	ret = db_qp_destroy(&q);
	if (ret)
		die("destroy qp: %s", strerror(ret));
	ibv_destroy_cq(cq);
	vt_dev_close(&d);
	free(tmpl);
	free(flag);
}

/* ---- bench: the accelerator's store ring against the CPU's page ring ---- */

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void stats_json(const char *name, double *v, int n, const char *sep)
{
	qsort(v, n, sizeof(*v), cmp_dbl);
	printf("\"%s\": {\"median_us\": %.2f, \"p25_us\": %.2f, \"p75_us\": %.2f, "
	       "\"min_us\": %.2f, \"max_us\": %.2f}%s", name, v[n / 2], v[n / 4],
	       v[3 * n / 4], v[0], v[n - 1], sep);
}

/*
 * One 8-byte RDMA WRITE per iteration on a peer doorbell QP, posted, rung
 * and polled to completion, in alternating blocks:
 *   page   the CPU writes the WQE and stores the index in the slot;
 *   accel  the CPU stores a flag; the accelerator's program, waiting on it,
 *          copies the WQE into the queue and rings through the vmap.
 * Both rings are a store into the same page; the engine scans the slot
 * (RXE_CREATE_QP_DOORBELL_PEER), nobody kicks. The time is from the CPU's
 * first store to the polled completion.
 */
static void t_bench(int n)
{
	struct p2paccel *acc = acc_open();
	struct p2paccel_prog *prog = p2paccel_prog_new();
	struct p2paccel_reject rej;
	struct p2paccel_status st;
	struct ibv_wc wc;
	struct target t;
	struct poster p;
	double *page = calloc(n, sizeof(double)), *accel = calloc(n, sizeof(double));
	int np = 0, na = 0, i, k, ret, block = 50;
	uint64_t *flag;
	double t0;

	target_open(&t, "rxe0", 64);
	poster_setup(acc, &t, prog, 1, &p);
	flag = p.flag;
	/* flag odd: post and ring; flag even: post and ring; n rounds */
	p2paccel_prog_wait(prog, p.fbuf, 0, 8, 1, 1, 60000000);
	poster_post_ring(&t, prog, &p, 1, P2PACCEL_RING_STORE);
	p2paccel_prog_wait(prog, p.fbuf, 0, 8, 0, 1, 60000000);
	poster_post_ring(&t, prog, &p, 1, P2PACCEL_RING_STORE);
	p2paccel_prog_loop(prog, 0, (n + 1) / 2);
	ret = p2paccel_submit(acc, prog, &rej, sizeof(rej));
	if (ret)
		die("bench: submit: %s (%s)", strerror(ret), p2paccel_reject_str(rej.reason));

	for (k = 0; np < n || na < n; k++) {
		for (i = 0; i < block; i++) {
			if (k % 2 == 0 && np < n) {
				t0 = now_us();
				raw_qp_post_write(&t.q, np, 0, 65536, 8);
				raw_qp_ring_value(&t.q, t.q.prod);
				if (wait_cq(t.cq, 1, 10000, &wc) != 1 || wc.status)
					die("bench: page ring %d did not complete", np);
				page[np++] = now_us() - t0;
			} else if (k % 2 == 1 && na < n) {
				t0 = now_us();
				__atomic_store_n(flag, na + 1, __ATOMIC_RELEASE);
				if (wait_cq(t.cq, 1, 10000, &wc) != 1 || wc.status)
					die("bench: accelerator ring %d did not complete", na);
				accel[na++] = now_us() - t0;
				/* the accelerator posted: the index moved */
				t.q.prod = __atomic_load_n(&t.q.sq->producer_index,
							   __ATOMIC_ACQUIRE);
			}
		}
	}
	/* an odd n leaves the program waiting for one more flag */
	if (n % 2)
		__atomic_store_n(flag, n + 1, __ATOMIC_RELEASE);
	ret = p2paccel_wait(acc, 10000, &st, sizeof(st));
	if (ret || st.status)
		die("bench: the program ended with %d/%d", ret, st.status);
	if (n % 2)
		wait_cq(t.cq, 1, 10000, &wc);
	printf("{\"iterations\": %d, ", n);
	stats_json("page_ring", page, n, ", ");
	stats_json("accel_store_ring", accel, n, "");
	printf("}\n");
	p2paccel_prog_free(acc, prog);
	p2paccel_close(acc);
	target_close(&t);
	poster_free(&p);
	free(page);
	free(accel);
	exit(0);
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(what, "info"))
		t_info();
	else if (!strcmp(what, "udmabuf"))
		t_udmabuf();
	else if (!strcmp(what, "sends"))
		t_sends();
	else if (!strcmp(what, "reject"))
		t_reject();
	else if (!strcmp(what, "revoke-destroy"))
		t_revoke_destroy();
	else if (!strcmp(what, "revoke-kill"))
		t_revoke_kill(export_raw_qp, "exporter SIGKILL");
	else if (!strcmp(what, "proxy-kill"))
		t_revoke_kill(export_proxy_qp, "proxy: exporter SIGKILL");
	else if (!strcmp(what, "revoke-linkdel") && argc > 2)
		t_revoke_linkdel(argv[2]);
	else if (!strcmp(what, "unplug"))
		t_unplug();
	else if (!strcmp(what, "proxy") && argc > 3 &&
		 (!strcmp(argv[3], "revoked") || !strcmp(argv[3], "orphaned")))
		t_proxy(atoi(argv[2]), !strcmp(argv[3], "revoked"));
	else if (!strcmp(what, "isolation"))
		t_isolation();
	else if (!strcmp(what, "cycles") && argc > 2)
		t_cycles(atoi(argv[2]));
	else if (!strcmp(what, "put") && argc > 2)
		t_put(atoi(argv[2]));
	else if (!strcmp(what, "bench") && argc > 2)
		t_bench(atoi(argv[2]));
	else
		die("usage: accel_test info|udmabuf|sends|reject|revoke-destroy|"
		    "revoke-kill|revoke-linkdel DEV|unplug|proxy N revoked|orphaned|"
		    "proxy-kill|isolation|"
		    "cycles N|put N|bench N");
	printf("# %s: %d tests, %d failed\n", what, tests, failed);
	return failed ? 1 : 0;
}
