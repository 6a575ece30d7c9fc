// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * NIC-to-NIC ring (docs/rxe-import.md): one rxe device RDMA-writes another
 * rxe device's doorbell.
 *
 *   rxe_nic2nic DEV0 DEV1 rings N
 *   rxe_nic2nic DEV0 DEV1 revoke destroy|kill|linkdel
 *   rxe_nic2nic DEV0 DEV1 bench N   latency: NIC ring vs CPU page ring (JSON)
 *
 * Process A, on DEV0, has a doorbell QP alone in a doorbell page
 * (RXE_CREATE_QP_DOORBELL_DEDICATED | _PEER, and _STAGED when the kernel
 * grants it) whose WQEs it writes without ringing, and exports that page
 * as a dma-buf (write-only for peers). Process B, in the network namespace
 * "peer" (if there is one), registers an MR over the dma-buf on DEV1 with
 * ibv_reg_dmabuf_mr(), and a QP of DEV1 RDMA-writes producer indices into
 * it, i.e. into the QP's slot: DEV1 writes DEV0's doorbell, and DEV0's
 * doorbell engine sees the ring in a peer slot and sends.
 *
 * rings: N rings, each the next producer index, produce exactly N sends, in
 * order (staged: a ring is the only thing that releases a WQE); a forged
 * write past the dedicated page (a neighbour's slot) is refused.
 *
 * revoke: B rings in a loop while A's QP is destroyed (which revokes the
 * dedicated page's export), A is killed, or the test script deletes DEV0
 * (linkdel: B prints "ringing" and the script runs `rdma link del`). B's
 * writes then fail with a remote access error and B stops; nobody hangs.
 *
 * The doorbell QP is created and posted to by hand on A's uverbs fd (rxe_db.h)
 * because the rdma-core this builds against has no staged mode; B uses only
 * libibverbs and the rxe provider. Prints TAP; exits non-zero on failure.
 */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "rxe_db_bench.h"
#include "p2p_test_tap.h"
#include "rxe_loopback.h"

/* the iova of the ringer's MR over the doorbell page */
#define DB_IOVA 0x10000000ull

/* What B needs from A, and A's requests to B, over pipes. */
struct msg {
	uint32_t op;		/* MSG_* */
	uint32_t value;		/* the producer index to ring */
};

enum { MSG_RING, MSG_LOOP, MSG_FORGE, MSG_QUIT };

/* B's answer to each message: the status of its RDMA WRITE(s). */
struct ans {
	uint32_t status;	/* enum ibv_wc_status */
	uint32_t count;		/* writes that succeeded (loop) */
	double posted_us;	/* CLOCK_MONOTONIC when the ring was posted */
};

/*
 * Set before the ringer is forked: it writes a byte to ring_fd after the
 * first successful ring of a loop, and its loop's answer to res_fd too
 * (for a parent that outlives A).
 */
static int ring_fd = -1, res_fd = -1;

static void xwrite(int fd, const void *p, size_t len)
{
	if (write(fd, p, len) != (ssize_t)len)
		die("pipe write: %s", strerror(errno));
}

static int xread(int fd, void *p, size_t len)
{
	ssize_t n = read(fd, p, len);

	if (n == 0)
		return 0;
	if (n != (ssize_t)len)
		die("pipe read: %zd: %s", n, strerror(errno));
	return 1;
}

/* ---- B: the ringer on DEV1 ---- */

static double last_post_us;

/* One 4-byte RDMA WRITE of value at byte off of the doorbell MR. */
static enum ibv_wc_status ring(struct env *e, struct ibv_mr *dbmr,
			       uint64_t off, uint32_t value)
{
	*(uint32_t *)e->buf = htole32(value);	/* the slot is little-endian */
	last_post_us = now_us();
	return rdma(e, IBV_WR_RDMA_WRITE, e->mr, e->buf, 4, dbmr,
		    DB_IOVA + off);
}

static void enter_peer_netns(void)
{
	int fd = open("/var/run/netns/peer", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;		/* no such namespace: DEV1 is in ours */
	if (setns(fd, CLONE_NEWNET))
		die("setns peer: %s", strerror(errno));
	close(fd);
}

static int ringer_main(const char *dev, int dbfd, size_t len, int in, int out)
{
	struct ibv_mr *dbmr;
	struct env e;
	struct msg m;
	struct ans a;

	signal(SIGPIPE, SIG_IGN);
	env_open(&e, dev);
	/* The doorbell page, as an MR of DEV1: writes only, as exported. */
	dbmr = ibv_reg_dmabuf_mr(e.pd, 0, len, DB_IOVA, dbfd, ACC_WO);
	if (!dbmr)
		die("ibv_reg_dmabuf_mr over the doorbell on %s: %s", dev,
		    strerror(errno));
	close(dbfd);	/* the MR holds the buffer */
	env_connect(&e);

	while (xread(in, &m, sizeof(m))) {
		memset(&a, 0, sizeof(a));
		switch (m.op) {
		case MSG_RING:
			a.status = ring(&e, dbmr, 0, m.value);
			a.posted_us = last_post_us;
			break;
		case MSG_FORGE:
			/* past the page: where a neighbour's slot would be */
			a.status = ring(&e, dbmr, len, m.value);
			env_connect(&e);
			break;
		case MSG_LOOP:
			/* ring until a write fails (the doorbell revoked) */
			do {
				a.status = ring(&e, dbmr, 0, m.value);
				if (a.status != IBV_WC_SUCCESS)
					break;
				if (!a.count++) {
					printf("# ringing\n");
					if (ring_fd >= 0)
						xwrite(ring_fd, "r", 1);
				}
			} while (1);
			/* and once more: the MR stays dead */
			env_connect(&e);
			if (ring(&e, dbmr, 0, m.value) == IBV_WC_SUCCESS)
				a.count |= 1u << 31;
			break;
		default:
			goto out;
		}
		if (res_fd >= 0)
			xwrite(res_fd, &a, sizeof(a));
		/* A may be gone (killed): then clean up and exit */
		if (write(out, &a, sizeof(a)) != sizeof(a))
			break;
	}
out:
	if (ibv_dereg_mr(dbmr))
		die("deregister the doorbell MR: %s", strerror(errno));
	env_close(&e);
	return 0;
}

/* ---- A: the doorbell QP on DEV0 ---- */

struct side {
	struct db_dev d;
	struct raw_qp q;
	struct ibv_cq *cq;
	int staged;
	int fd;			/* the export */
	pid_t ringer;
	int to, from;		/* pipes to and from the ringer */
};

static unsigned long long hw_counter(const char *dev, const char *name)
{
	char path[256];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path),
		 "/sys/class/infiniband/%s/ports/1/hw_counters/%s", dev, name);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%llu", &v) != 1)
		die("read %s", path);
	fclose(f);
	return v;
}

/* Pass fd over the unix socket sock (SCM_RIGHTS), or receive one. */
static void send_fd(int sock, int fd)
{
	char c = 0, buf[CMSG_SPACE(sizeof(int))] = {};
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = buf, .msg_controllen = sizeof(buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (sendmsg(sock, &mh, 0) != 1)
		die("send the dma-buf fd: %s", strerror(errno));
}

static int recv_fd(int sock)
{
	char c, buf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = buf, .msg_controllen = sizeof(buf) };
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &mh, 0) != 1)
		die("receive the dma-buf fd: %s", strerror(errno));
	cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		die("no fd in the message");
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/*
 * The ringer is forked before A opens DEV0, and gets the dma-buf over a
 * unix socket: a fork after the open would give it A's device file and
 * A's queue and doorbell mappings, which keep A's context alive after A
 * is killed.
 */
static void side_open(struct side *s, const char *dev0, const char *dev1)
{
	long pagesize = sysconf(_SC_PAGESIZE);
	int to[2], from[2], sock[2], flags, err;

	memset(s, 0, sizeof(*s));
	if (pipe2(to, O_CLOEXEC) || pipe2(from, O_CLOEXEC) ||
	    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sock))
		die("pipe");
	fflush(stdout);
	s->ringer = fork();
	if (s->ringer < 0)
		die("fork");
	if (!s->ringer) {
		close(to[1]);
		close(from[0]);
		close(sock[0]);
		enter_peer_netns();
		_exit(ringer_main(dev1, recv_fd(sock[1]), pagesize, to[0],
				  from[1]));
	}
	close(to[0]);
	close(from[1]);
	close(sock[1]);
	s->to = to[1];
	s->from = from[0];

	db_dev_open(&s->d, dev0);
	s->cq = ibv_create_cq(s->d.v.ctx, 256, NULL, NULL, 0);
	if (!s->cq)
		die("cq");
	flags = RXE_CREATE_QP_DOORBELL_DEDICATED | RXE_CREATE_QP_DOORBELL_PEER;
	err = raw_qp_create(&s->d, &s->q, s->cq,
			    flags | RXE_CREATE_QP_DOORBELL_STAGED, 64,
			    sizeof(struct rxe_create_qp_resp));
	s->staged = !err;
	if (err == EOPNOTSUPP) {
		printf("# the kernel has no staged QPs: each WQE is written just before its ring\n");
		err = raw_qp_create(&s->d, &s->q, s->cq, flags, 64,
				    sizeof(struct rxe_create_qp_resp));
	}
	if (err)
		die("create the doorbell qp: %s", strerror(err));
	raw_qp_connect(&s->q);

	s->fd = ibv_cmd_export_dmabuf_fd(s->d.v.ctx, s->q.db_offset);
	check(s->fd >= 0 && lseek(s->fd, 0, SEEK_END) == pagesize,
	      "the dedicated doorbell page exports as a one-page dma-buf");
	if (s->fd < 0)
		exit(1);
	send_fd(sock[0], s->fd);
	close(sock[0]);
	close(s->fd);	/* the ringer's MR holds the buffer */
}

static struct ans ask(struct side *s, uint32_t op, uint32_t value)
{
	struct msg m = { .op = op, .value = value };
	struct ans a;

	xwrite(s->to, &m, sizeof(m));
	if (!xread(s->from, &a, sizeof(a)))
		die("the ringer died");
	return a;
}

static void side_close(struct side *s)
{
	struct msg m = { .op = MSG_QUIT };
	int status;

	xwrite(s->to, &m, sizeof(m));
	close(s->to);
	close(s->from);
	if (waitpid(s->ringer, &status, 0) != s->ringer)
		status = -1;
	check(WIFEXITED(status) && !WEXITSTATUS(status),
	      "the ringer deregisters its MR and exits (status %#x)", status);
}

/* Post WQE seq (an RDMA WRITE of seq into A's buffer) without ringing. */
static void stage(struct side *s, uint32_t seq)
{
	size_t slot = seq % 64;

	memcpy(s->d.v.buf + 4096 + slot * 4, &seq, 4);
	raw_qp_post_write(&s->q, seq, 4096 + slot * 4, 65536 + slot * 4, 4);
}

/* The completion of WQE seq, and no other; its data arrived. */
static int complete(struct side *s, uint32_t seq)
{
	struct ibv_wc wc;
	size_t slot = seq % 64;

	if (wait_cq(s->cq, 1, 30000, &wc) != 1) {
		check(0, "ring %u: no send (slot flags %#x)", seq,
		      raw_qp_slot_flags(&s->q));
		return 0;
	}
	if (wc.status != IBV_WC_SUCCESS || wc.wr_id != seq ||
	    memcmp(s->d.v.buf + 65536 + slot * 4, &seq, 4)) {
		check(0, "ring %u: completion of wr %llu, %s", seq,
		      (unsigned long long)wc.wr_id, ibv_wc_status_str(wc.status));
		return 0;
	}
	return 1;
}

static void t_rings(const char *dev0, const char *dev1, int n)
{
	unsigned long long inv0, spur0;
	uint32_t prod0, seq = 0, mask;
	struct side s;
	struct ibv_wc wc;
	struct ans a;
	int i, good = 1, depth;

	side_open(&s, dev0, dev1);
	inv0 = hw_counter(dev0, "db_invalid_rings");
	spur0 = hw_counter(dev0, "db_spurious_rings");
	prod0 = s.q.prod;
	mask = s.q.sq->index_mask;

	/* Staged: keep depth WQEs posted ahead of the rings. */
	depth = s.staged ? 16 : 0;
	while (seq < (uint32_t)depth)
		stage(&s, ++seq);
	for (i = 1; i <= n; i++) {
		if (!s.staged)
			stage(&s, ++seq);
		/* ring exactly one more WQE: the producer index after WQE i */
		a = ask(&s, MSG_RING, (prod0 + i) & mask);
		if (a.status != IBV_WC_SUCCESS) {
			check(0, "ring %d: the ringer's RDMA WRITE: %s", i,
			      ibv_wc_status_str(a.status));
			good = 0;
			break;
		}
		good = complete(&s, i);
		if (!good)
			break;
		if (s.staged)
			stage(&s, ++seq);
		if (i % 2000 == 0)
			printf("# %d rings\n", i);
	}
	check(good, "%d RDMA WRITEs from %s into %s's doorbell: %d sends, in order",
	      n, dev1, dev0, good ? n : i - 1);
	if (s.staged)
		check(wait_cq(s.cq, 1, 300, &wc) == 0,
		      "no send without a ring (%d WQEs staged)", depth);
	check(hw_counter(dev0, "db_invalid_rings") == inv0,
	      "no ring was invalid (torn or out of range)");
	printf("# spurious rings: %llu\n",
	       hw_counter(dev0, "db_spurious_rings") - spur0);

	/* Bounds: the MR is the page; a neighbour's slot is beyond it. */
	a = ask(&s, MSG_FORGE, 1);
	check(a.status == IBV_WC_REM_ACCESS_ERR,
	      "a write past the dedicated page: %s", ibv_wc_status_str(a.status));
	side_close(&s);
	raw_qp_destroy(&s.q);
	ibv_destroy_cq(s.cq);
	db_dev_close(&s.d);
}

/* Wait for the ringer's first successful ring of its loop. */
static void wait_ringing(int fd)
{
	char c;

	if (read(fd, &c, 1) != 1)
		die("the ringer never rang");
}

static void t_revoke(const char *dev0, const char *dev1, const char *how)
{
	struct msg m = { .op = MSG_LOOP };
	int notify[2], res[2], status;
	pid_t a_pid, pid;
	struct side s;
	struct ans a;

	if (pipe(notify) || pipe(res))
		die("pipe");
	ring_fd = notify[1];

	if (!strcmp(how, "kill")) {
		/*
		 * A is a child here, so that we can kill it; its ringer, A's
		 * child, becomes ours and answers on res.
		 */
		if (prctl(PR_SET_CHILD_SUBREAPER, 1))
			die("subreaper");
		a_pid = fork();
		if (a_pid < 0)
			die("fork");
		if (!a_pid) {
			close(res[0]);
			res_fd = res[1];
			side_open(&s, dev0, dev1);
			m.value = s.q.prod;
			xwrite(s.to, &m, sizeof(m));
			pause();
			_exit(0);
		}
		close(res[1]);
		wait_ringing(notify[0]);
		kill(a_pid, SIGKILL);
		if (waitpid(a_pid, &status, 0) != a_pid)
			status = 0;
		check(WIFSIGNALED(status), "A killed while the ringer rings");
		if (read(res[0], &a, sizeof(a)) != sizeof(a))
			die("no answer from the ringer");
		pid = wait(&status);
		if (pid <= 0)
			status = -1;
		check(WIFEXITED(status) && !WEXITSTATUS(status),
		      "the ringer deregisters its MR and exits (status %#x)",
		      status);
	} else {
		side_open(&s, dev0, dev1);
		m.value = s.q.prod;
		xwrite(s.to, &m, sizeof(m));
		wait_ringing(notify[0]);
		/* linkdel: the script deletes DEV0 on "# ringing" */
		if (!strcmp(how, "destroy"))
			check(!raw_qp_destroy(&s.q), "A's QP destroyed while rung");
		if (!xread(s.from, &a, sizeof(a)))
			die("the ringer died");
	}
	check(a.status == IBV_WC_REM_ACCESS_ERR,
	      "%s: the ringer's writes fail with %s after %u rings", how,
	      ibv_wc_status_str(a.status), a.count & ~(1u << 31));
	check(!(a.count & (1u << 31)), "%s: and keep failing", how);
	if (strcmp(how, "kill")) {
		side_close(&s);
		if (strcmp(how, "destroy"))
			raw_qp_destroy(&s.q);	/* fails after linkdel: fine */
		ibv_destroy_cq(s.cq);
		db_dev_close(&s.d);
	}
}

/*
 * Latency of one ring to the send's completion on A's CQ, alternating
 * blocks on the same QP: the CPU stores the producer index into its mapped
 * slot (the page ring of a peer slot, no kick), or rxe1 RDMA-writes it
 * (timed from the ringer's post). Prints one JSON line; asserts only that
 * every ring completes.
 */
static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Sorted samples as bench/rxe-doorbell-report reads them. */
static void print_dist(const double *v, int n)
{
	printf("{\"n\": %d, \"median_us\": %.2f, \"p10_us\": %.2f, \"p25_us\": %.2f, \"p75_us\": %.2f, \"p90_us\": %.2f}",
	       n, v[n / 2], v[n / 10], v[n / 4], v[n * 3 / 4], v[n * 9 / 10]);
}

static void t_bench(const char *dev0, const char *dev1, int n)
{
	double *cpu = calloc(n, sizeof(double)), *nic = calloc(n, sizeof(double));
	int i, k = 0, round, nc = 0, nn = 0, block = n / 10 ? n / 10 : 1;
	uint32_t seq = 0;
	struct side s;
	struct ans a;
	double t0;

	if (!cpu || !nic)
		die("memory");
	side_open(&s, dev0, dev1);
	for (round = 0; round < 10 && k < 2 * n; round++) {
		for (i = 0; i < block && nc < n; i++, k++) {
			stage(&s, ++seq);
			t0 = now_us();
			raw_qp_ring_value(&s.q, s.q.prod);
			if (!complete(&s, seq))
				exit(1);
			cpu[nc++] = now_us() - t0;
		}
		for (i = 0; i < block && nn < n; i++, k++) {
			stage(&s, ++seq);
			a = ask(&s, MSG_RING, s.q.prod);
			if (a.status != IBV_WC_SUCCESS || !complete(&s, seq))
				die("nic ring %u: %s", seq, ibv_wc_status_str(a.status));
			nic[nn++] = now_us() - a.posted_us;
		}
	}
	qsort(cpu, nc, sizeof(double), cmp_double);
	qsort(nic, nn, sizeof(double), cmp_double);
	printf("{\"staged\": %s, \"cpu_page_ring\": ", s.staged ? "true" : "false");
	print_dist(cpu, nc);
	printf(", \"nic_ring\": ");
	print_dist(nic, nn);
	printf("}\n");
	side_close(&s);
	raw_qp_destroy(&s.q);
	ibv_destroy_cq(s.cq);
	db_dev_close(&s.d);
	free(cpu);
	free(nic);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 5)
		die("usage: %s DEV0 DEV1 rings N | revoke destroy|kill|linkdel | bench N",
		    argv[0]);
	if (!strcmp(argv[3], "bench")) {
		t_bench(argv[1], argv[2], atoi(argv[4]));
		return 0;
	}
	printf("TAP version 13\n");
	if (!strcmp(argv[3], "rings"))
		t_rings(argv[1], argv[2], atoi(argv[4]));
	else if (!strcmp(argv[3], "revoke"))
		t_revoke(argv[1], argv[2], argv[4]);
	else
		die("unknown test %s", argv[3]);
	printf("1..%d\n", tests);
	return failed ? 1 : 0;
}
