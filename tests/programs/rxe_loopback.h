/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * An rxe device opened through libibverbs with a PD, a local buffer and its
 * MR, a CQ, and an RC QP pair connected to itself (qp[0] requests, qp[1]
 * responds), for the dma-buf MR tests: post one work request and wait for
 * its completion. Dies ("FAIL: ...") on setup errors.
 */
#ifndef RXE_LOOPBACK_H
#define RXE_LOOPBACK_H

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <infiniband/verbs.h>

#ifndef die
#define die(...) do { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); exit(2); } while (0)
#endif

#define ACC_RW (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
		IBV_ACCESS_REMOTE_READ)
#define ACC_ALL (ACC_RW | IBV_ACCESS_REMOTE_ATOMIC)
#define ACC_WO (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE)

/* The device, a local buffer with its MR, and an RC QP connected to another. */
struct env {
	const char *name;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp[2];	/* qp[0] requests, qp[1] responds */
	int gid_index;
	union ibv_gid gid;
	char *buf;
	struct ibv_mr *mr;
};

#define LOCAL_SIZE (64 * 1024)

/* The error of the last ibv_post_send() of post_wait(), 0 if it posted. */
static int post_err;
/* completions post_wait() polled for a later caller */
static struct ibv_wc stash[16];
static int nstash;

static void env_open(struct env *e, const char *name)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	struct ibv_port_attr pattr;
	int i;

	memset(e, 0, sizeof(*e));
	e->name = name;
	for (i = 0; list && list[i]; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name))
			break;
	if (!list || !list[i])
		die("no device %s", name);
	e->ctx = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	if (!e->ctx)
		die("open %s: %s", name, strerror(errno));
	e->pd = ibv_alloc_pd(e->ctx);
	if (!e->pd || ibv_query_port(e->ctx, 1, &pattr))
		die("pd or port of %s", name);
	e->gid_index = -1;
	for (i = 0; i < pattr.gid_tbl_len && i < 16; i++) {
		union ibv_gid g;

		/* an IPv4 mapped RoCEv2 GID: ::ffff:a.b.c.d */
		if (!ibv_query_gid(e->ctx, 1, i, &g) && !g.raw[0] && !g.raw[8] &&
		    g.raw[10] == 0xff && g.raw[11] == 0xff) {
			e->gid_index = i;
			e->gid = g;
			break;
		}
	}
	if (e->gid_index < 0)
		die("%s has no IPv4 GID", name);
	e->buf = aligned_alloc(sysconf(_SC_PAGESIZE), LOCAL_SIZE);
	if (!e->buf)
		die("buffer");
	memset(e->buf, 0, LOCAL_SIZE);
	e->mr = ibv_reg_mr(e->pd, e->buf, LOCAL_SIZE, ACC_ALL);
	e->cq = ibv_create_cq(e->ctx, 64, NULL, NULL, 0);
	if (!e->mr || !e->cq)
		die("local mr or cq: %s", strerror(errno));
}

static void qp_to_rts(struct env *e, struct ibv_qp *qp, uint32_t dest)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.port_num = 1,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE |
				   IBV_ACCESS_REMOTE_READ |
				   IBV_ACCESS_REMOTE_ATOMIC,
	};

	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			  IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
		die("INIT: %s", strerror(errno));
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_1024;
	a.dest_qp_num = dest;
	a.max_dest_rd_atomic = 4;
	a.min_rnr_timer = 12;
	a.ah_attr.is_global = 1;
	a.ah_attr.grh.dgid = e->gid;
	a.ah_attr.grh.sgid_index = e->gid_index;
	a.ah_attr.grh.hop_limit = 1;
	a.ah_attr.port_num = 1;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
			  IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
			  IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
		die("RTR: %s", strerror(errno));
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.max_rd_atomic = 4;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT |
			  IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
			  IBV_QP_MAX_QP_RD_ATOMIC))
		die("RTS: %s", strerror(errno));
}

/* (Re)create the QP pair: after an access error the requester is in error. */
static void env_connect(struct env *e)
{
	struct ibv_qp_init_attr ia = {
		.cap = { .max_send_wr = 16, .max_recv_wr = 16,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.qp_type = IBV_QPT_RC,
		.send_cq = e->cq,
		.recv_cq = e->cq,
	};
	struct ibv_wc wc[16];
	int i;

	for (i = 0; i < 2; i++) {
		if (e->qp[i] && ibv_destroy_qp(e->qp[i]))
			die("destroy qp: %s", strerror(errno));
		e->qp[i] = ibv_create_qp(e->pd, &ia);
		if (!e->qp[i])
			die("create qp: %s", strerror(errno));
	}
	while (ibv_poll_cq(e->cq, 16, wc) > 0)
		;	/* flushed work of the old pair */
	nstash = 0;
	qp_to_rts(e, e->qp[0], e->qp[1]->qp_num);
	qp_to_rts(e, e->qp[1], e->qp[0]->qp_num);
}

static void env_close(struct env *e)
{
	ibv_destroy_qp(e->qp[0]);
	ibv_destroy_qp(e->qp[1]);
	ibv_destroy_cq(e->cq);
	ibv_dereg_mr(e->mr);
	ibv_dealloc_pd(e->pd);
	ibv_close_device(e->ctx);
	free(e->buf);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Post wr on qp[side] and return the status of its completion (the
 * completion of an earlier posted receive counts too when wr is NULL).
 * A completion that never comes fails the program.
 */

static enum ibv_wc_status post_wait(struct env *e, int side,
				    struct ibv_send_wr *wr, uint64_t want_id)
{
	struct ibv_send_wr *bad;
	double end = now_s() + 30;
	struct ibv_wc wc;
	int n;

	post_err = wr ? ibv_post_send(e->qp[side], wr, &bad) : 0;
	if (post_err) {
		/* the provider refused it (it returns the errno) */
		printf("# post_send: %s\n", strerror(post_err));
		return IBV_WC_GENERAL_ERR;
	}
	/* a completion polled while waiting for another one (a RECV's) */
	for (n = 0; n < nstash; n++)
		if (stash[n].wr_id == want_id) {
			wc = stash[n];
			stash[n] = stash[--nstash];
			return wc.status;
		}
	while (now_s() < end) {
		n = ibv_poll_cq(e->cq, 1, &wc);
		if (n < 0)
			die("poll cq");
		if (n && wc.wr_id == want_id)
			return wc.status;
		if (n && nstash < 16)
			stash[nstash++] = wc;
	}
	die("no completion for wr %" PRIu64, want_id);
}

static enum ibv_wc_status rdma(struct env *e, enum ibv_wr_opcode op,
			       struct ibv_mr *lmr, void *laddr, uint32_t len,
			       struct ibv_mr *rmr, uint64_t raddr)
{
	static uint64_t id = 1;
	struct ibv_sge sge = {
		.addr = (uintptr_t)laddr, .length = len, .lkey = lmr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = ++id, .sg_list = &sge, .num_sge = 1, .opcode = op,
		.send_flags = IBV_SEND_SIGNALED,
	};

	wr.wr.rdma.remote_addr = raddr;
	wr.wr.rdma.rkey = rmr->rkey;
	return post_wait(e, 0, &wr, wr.wr_id);
}

#endif /* RXE_LOOPBACK_H */
