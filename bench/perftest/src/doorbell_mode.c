/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * --doorbell=<mode> (see doorbell_mode.h).
 *
 * The mechanism behind each mode is rdma-core's, never perftest's own: the
 * provider rings (page) or kicks (syscall) inside ibv_post_send(); the
 * generic peer doorbell verbs of <infiniband/peer_db.h> tell whether a QP
 * has a doorbell page, and create the staged QPs that a peer rings (nic,
 * accel). Without those verbs (a stock rdma-core) only syscall runs.
 *
 * A mode is checked twice: once before the test connects, on a throwaway
 * QP of the device (so that a mode the stack cannot run stops both sides
 * before they wait for each other), and again on every QP of the test.
 */

#include <endian.h>
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#if defined(HAVE_INFINIBAND_PEER_DB_H) && defined(HAVE_IBV_PEER_QUERY_SQ)
#include <infiniband/peer_db.h>
#define HAVE_PEER_DB 1
#endif
/* the peer accelerator's library (tests/accel), linked static when found */
#if defined(HAVE_P2PACCEL_H) && defined(HAVE_LIBP2PACCEL)
#include <p2paccel.h>
#else
#undef HAVE_LIBP2PACCEL
#endif

#include "doorbell_mode.h"
#include "perftest_parameters.h"
#include "perftest_resources.h"

/*
 * The rxe provider's documented switch between ringing through the
 * doorbell page ("page", its default) and the system call kick
 * ("syscall"), read when a device is opened; other providers ignore it.
 */
#define RXE_DOORBELL_ENV "RXE_DOORBELL"

struct doorbell_mode_ops {
	const char *name;
	const char *help;
	/* RXE_DOORBELL for the provider, set before the device is opened */
	const char *env;
	/* NULL when the stack can run the mode, else what it needs */
	const char *(*unavailable)(struct ibv_context *context,
				   struct perftest_parameters *user_param);
	/* QPs that need create-time flags; NULL: perftest creates them */
	struct ibv_qp *(*create_qp)(struct pingpong_context *ctx,
				    struct perftest_parameters *user_param,
				    struct ibv_qp_init_attr_ex *attr);
	/* checks a created QP; NULL: nothing to check */
	int (*qp_created)(struct pingpong_context *ctx,
			  struct perftest_parameters *user_param,
			  struct ibv_qp *qp, int qp_index);
	/* rings after a post; NULL: the provider rang in the post */
	int (*ring)(struct pingpong_context *ctx,
		    struct perftest_parameters *user_param, int qp_index);
	void (*destroy)(struct pingpong_context *ctx,
			struct perftest_parameters *user_param);
};

#ifdef HAVE_PEER_DB
/* what a refusal says, for the message of doorbell_mode_check() */
static char why[256];

/*
 * Whether qp rings through a doorbell page: 1 yes, 0 no (the provider kicks
 * with a system call), -1 unknown (the provider has no peer doorbell
 * verbs; why says so).
 */
static int qp_has_page(struct ibv_qp *qp)
{
	struct ibv_peer_sq_attr attr;

	memset(&attr, 0, sizeof(attr));
	if (ibv_peer_query_sq(qp, &attr, sizeof(attr))) {
		snprintf(why, sizeof(why), "ibv_peer_query_sq() failed: %s%s", strerror(errno),
			 errno == EOPNOTSUPP ? " (the provider has no peer doorbell verbs)" : "");
		return -1;
	}
	return attr.db != NULL;
}

/*
 * A throwaway RC QP of the device, for a check before the test; staged
 * (IBV_PEER_QP_STAGED | IBV_PEER_QP_DEDICATED_DB) for the peer modes.
 * Returns 0, or -1 with why set.
 */
struct check_qp {
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
};

static const uint32_t staged_flags = IBV_PEER_QP_STAGED | IBV_PEER_QP_DEDICATED_DB;

static struct ibv_qp *staged_create_qp(struct ibv_context *context,
				       struct ibv_qp_init_attr_ex *attr)
{
	struct ibv_peer_qp_init_attr peer_attr;

	memset(&peer_attr, 0, sizeof(peer_attr));
	peer_attr.flags = staged_flags;
	return ibv_peer_create_qp(context, attr, &peer_attr, sizeof(peer_attr));
}

static void check_qp_close(struct check_qp *c)
{
	if (c->qp)
		ibv_destroy_qp(c->qp);
	if (c->cq)
		ibv_destroy_cq(c->cq);
	if (c->pd)
		ibv_dealloc_pd(c->pd);
}

static int check_qp_open(struct ibv_context *context, int staged, struct check_qp *c)
{
	struct ibv_qp_init_attr_ex attr;

	memset(c, 0, sizeof(*c));
	c->pd = ibv_alloc_pd(context);
	c->cq = c->pd ? ibv_create_cq(context, 1, NULL, NULL, 0) : NULL;
	if (!c->cq) {
		snprintf(why, sizeof(why), "cannot create a PD and CQ to check: %s", strerror(errno));
		check_qp_close(c);
		return -1;
	}
	memset(&attr, 0, sizeof(attr));
	attr.comp_mask = IBV_QP_INIT_ATTR_PD;
	attr.pd = c->pd;
	attr.send_cq = c->cq;
	attr.recv_cq = c->cq;
	attr.qp_type = IBV_QPT_RC;
	attr.cap.max_send_wr = 1;
	attr.cap.max_recv_wr = 1;
	attr.cap.max_send_sge = 1;
	attr.cap.max_recv_sge = 1;
	c->qp = staged ? staged_create_qp(context, &attr) : ibv_create_qp_ex(context, &attr);
	if (!c->qp) {
		snprintf(why, sizeof(why), "cannot create a %sQP to check: %s%s",
			 staged ? "staged " : "", strerror(errno), staged && errno == EOPNOTSUPP ?
			 " (the provider or the kernel has no staged doorbell QPs)" : "");
		check_qp_close(c);
		return -1;
	}
	return 0;
}

/* qp_has_page() for a throwaway RC QP of the device, before the test. */
static int device_qp_has_page(struct ibv_context *context)
{
	struct check_qp c;
	int ret;

	if (check_qp_open(context, 0, &c))
		return -1;
	ret = qp_has_page(c.qp);
	check_qp_close(&c);
	return ret;
}

static const char *needs_page(struct ibv_context *context,
			      struct perftest_parameters *user_param)
{
	switch (device_qp_has_page(context)) {
	case 1:
		return NULL;
	case 0:
		return "the device gives a QP no doorbell page (a kernel whose rxe has no doorbell pages, e.g. Debian's, or db pages refused)";
	default:
		return why;
	}
}

static int page_qp_created(struct pingpong_context *ctx, struct perftest_parameters *user_param,
			   struct ibv_qp *qp, int qp_index)
{
	if (qp_has_page(qp) == 1)
		return 0;
	fprintf(stderr, " Doorbell mode page: QP %d has no doorbell page\n", qp_index);
	return FAILURE;
}

static const char *needs_syscall(struct ibv_context *context,
				 struct perftest_parameters *user_param)
{
	/* -1: no peer verbs, so no doorbell page either: the provider kicks */
	if (device_qp_has_page(context) != 1)
		return NULL;
	return "the provider still rings a doorbell page (it ignored " RXE_DOORBELL_ENV "=syscall)";
}

static int syscall_qp_created(struct pingpong_context *ctx, struct perftest_parameters *user_param,
			      struct ibv_qp *qp, int qp_index)
{
	if (qp_has_page(qp) != 1)
		return 0;
	fprintf(stderr, " Doorbell mode syscall: QP %d rings a doorbell page\n", qp_index);
	return FAILURE;
}

/* ---- nic and accel: staged sends that a peer rings ---- */

/*
 * A staged QP of the test: ibv_post_send() and ibv_wr_complete() write its
 * WQEs and move its producer index, but nothing is sent until a ring of
 * its doorbell, whose value is the producer index up to which WQEs go
 * (IBV_PEER_DB_VALUE_PROD_INDEX). The doorbell is exported as a dma-buf
 * that grants this QP only (IBV_PEER_QP_DEDICATED_DB), for the peer.
 */
struct staged_qp {
	struct ibv_qp *qp;
	struct ibv_peer_sq_attr sq;
	struct ibv_peer_db_dmabuf db;
	/* nic: rxe1's MR over the doorbell */
	struct ibv_mr *db_mr;
#ifdef HAVE_LIBP2PACCEL
	/* accel: a context of its own (one program runs per context) */
	struct p2paccel *acc;
	struct p2paccel_prog *prog;
	uint32_t db_handle, flag_handle;
	int running;		/* the program was submitted */
	uint64_t flips;		/* rings asked for: the flag's value */
	uint32_t flip_prod;	/* the producer index at the last flip */
#endif
};

static struct staged_qp *staged;
static int nr_staged;

static struct staged_qp *staged_of(int qp_index)
{
	return qp_index >= 0 && qp_index < nr_staged && staged[qp_index].qp ?
		&staged[qp_index] : NULL;
}

static struct ibv_qp *staged_mode_create_qp(struct pingpong_context *ctx,
					    struct perftest_parameters *user_param,
					    struct ibv_qp_init_attr_ex *attr)
{
	return staged_create_qp(ctx->context, attr);
}

/*
 * Whether the peer can ring a staged QP of the device directly through the
 * dma-buf (ibv_peer_probe_db() on a throwaway QP): NULL yes, else why not.
 * The CPU proxy does not count: these modes measure the peer's own ring.
 */
static const char *staged_probe(struct ibv_context *context, const struct ibv_peer_desc *peer)
{
	struct ibv_peer_db_caps caps;
	const char *ret = why;
	struct check_qp c;
	int err;

	if (check_qp_open(context, 1, &c))
		return why;
	memset(&caps, 0, sizeof(caps));
	err = ibv_peer_probe_db(c.qp, peer, &caps, sizeof(caps));
	if (err)
		snprintf(why, sizeof(why), "ibv_peer_probe_db() failed: %s", strerror(err));
	else if (caps.method != IBV_PEER_DB_METHOD_DMABUF)
		snprintf(why, sizeof(why), "the peer cannot ring the doorbell through its dma-buf (%s: %s)",
			 ibv_peer_db_method_str(caps.method), ibv_peer_db_reason_str(caps.reason));
	else
		ret = NULL;
	check_qp_close(&c);
	return ret;
}

/*
 * Every QP of the test: check that it is staged and rung through a
 * dedicated doorbell, learn where its producer index lives and export the
 * doorbell. The mode's peer setup follows.
 */
static struct staged_qp *staged_qp_created(struct perftest_parameters *user_param,
					   struct ibv_qp *qp, int qp_index)
{
	const char *mode = doorbell_mode_name(user_param->doorbell_mode);
	struct staged_qp *s;
	int err;

	if (!staged) {
		staged = calloc(user_param->num_of_qps, sizeof(*staged));
		if (!staged) {
			fprintf(stderr, " Doorbell mode %s: out of memory\n", mode);
			return NULL;
		}
		nr_staged = user_param->num_of_qps;
	}
	if (qp_index < 0 || qp_index >= nr_staged) {
		fprintf(stderr, " Doorbell mode %s: QP index %d out of range\n", mode, qp_index);
		return NULL;
	}
	s = &staged[qp_index];
	memset(s, 0, sizeof(*s));
	s->db.fd = -1;
	err = ibv_peer_query_sq(qp, &s->sq, sizeof(s->sq));
	if (err) {
		fprintf(stderr, " Doorbell mode %s: ibv_peer_query_sq() of QP %d: %s\n",
			mode, qp_index, strerror(err));
		return NULL;
	}
	if (!(s->sq.flags & IBV_PEER_SQ_STAGED) || (s->sq.flags & IBV_PEER_SQ_PROXY) ||
	    s->sq.db_value != IBV_PEER_DB_VALUE_PROD_INDEX || s->sq.db_width != 4 ||
	    s->sq.db_byte_order != IBV_PEER_LITTLE_ENDIAN || s->sq.index_width != 4 ||
	    s->sq.index_byte_order != IBV_PEER_LITTLE_ENDIAN ||
	    s->sq.index_format != IBV_PEER_INDEX_WRAPPED) {
		fprintf(stderr, " Doorbell mode %s: QP %d is not a staged QP whose doorbell takes its 32-bit producer index (flags %#x)\n",
			mode, qp_index, s->sq.flags);
		return NULL;
	}
	err = ibv_peer_export_db(qp, IBV_PEER_EXPORT_EXCLUSIVE, &s->db, sizeof(s->db));
	if (err) {
		fprintf(stderr, " Doorbell mode %s: ibv_peer_export_db() of QP %d: %s\n",
			mode, qp_index, strerror(err));
		s->db.fd = -1;
		return NULL;
	}
	s->qp = qp;
	return s;
}

/* The producer index the provider published after the post (release). */
static uint32_t staged_prod(const struct staged_qp *s)
{
	return le32toh(__atomic_load_n((uint32_t *)s->sq.prod_index, __ATOMIC_ACQUIRE));
}

/* ---- nic: rxe1 RDMA-writes the producer index into an MR over the doorbell ---- */

#ifdef HAVE_REG_DMABUF_MR

/*
 * The ringer: the first RDMA device other than the test's with an active
 * port 1 and an IPv4 RoCE GID (rxe1 in our guests), and an RC QP pair
 * connected to itself on it: ring_qp[0] writes, ring_qp[1] is the
 * responder whose PD holds the MRs over the doorbells.
 */
#define NIC_RING_DEPTH 64
#define NIC_DB_IOVA 0x10000000ull

static struct {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp[2];
	int gid_index;
	union ibv_gid gid;
	int outstanding;	/* ring writes not yet completed */
} nic;

static int nic_gid(struct ibv_context *ctx, int *index, union ibv_gid *gid)
{
	struct ibv_port_attr pattr;
	int i;

	if (ibv_query_port(ctx, 1, &pattr) || pattr.state != IBV_PORT_ACTIVE)
		return -1;
	for (i = 0; i < pattr.gid_tbl_len && i < 16; i++) {
		/* an IPv4 mapped RoCEv2 GID: ::ffff:a.b.c.d */
		if (!ibv_query_gid(ctx, 1, i, gid) && !gid->raw[0] && !gid->raw[8] &&
		    gid->raw[10] == 0xff && gid->raw[11] == 0xff) {
			*index = i;
			return 0;
		}
	}
	return -1;
}

/* Open the ringer device (once per process); NULL, or why not. */
static const char *nic_open(struct ibv_context *context)
{
	struct ibv_device **list;
	int i;

	if (nic.ctx)
		return NULL;
	list = ibv_get_device_list(NULL);
	for (i = 0; list && list[i]; i++) {
		if (!strcmp(ibv_get_device_name(list[i]), ibv_get_device_name(context->device)))
			continue;
		nic.ctx = ibv_open_device(list[i]);
		if (nic.ctx && !nic_gid(nic.ctx, &nic.gid_index, &nic.gid))
			break;
		if (nic.ctx)
			ibv_close_device(nic.ctx);
		nic.ctx = NULL;
	}
	if (list)
		ibv_free_device_list(list);
	if (!nic.ctx) {
		snprintf(why, sizeof(why), "needs a second RDMA device with an active port and an IPv4 RoCE GID to ring from (e.g. rxe1); found none besides %s",
			 ibv_get_device_name(context->device));
		return why;
	}
	return NULL;
}

static const char *needs_nic(struct ibv_context *context,
			     struct perftest_parameters *user_param)
{
	struct ibv_peer_desc peer;
	const char *missing;

	missing = nic_open(context);
	if (missing)
		return missing;
	memset(&peer, 0, sizeof(peer));
	peer.kind = IBV_PEER_RDMA_DEVICE;
	peer.rdma_ctx = nic.ctx;
	return staged_probe(context, &peer);
}

static int nic_qp_to_rts(struct ibv_qp *qp, uint32_t dest)
{
	struct ibv_qp_attr a;

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_INIT;
	a.port_num = 1;
	a.qp_access_flags = IBV_ACCESS_REMOTE_WRITE;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
			  IBV_QP_ACCESS_FLAGS))
		return errno;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_1024;
	a.dest_qp_num = dest;
	a.min_rnr_timer = 12;
	a.ah_attr.is_global = 1;
	a.ah_attr.grh.dgid = nic.gid;
	a.ah_attr.grh.sgid_index = nic.gid_index;
	a.ah_attr.grh.hop_limit = 1;
	a.ah_attr.port_num = 1;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
			  IBV_QP_DEST_QPN | IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
			  IBV_QP_MIN_RNR_TIMER))
		return errno;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
			  IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC))
		return errno;
	return 0;
}

/* The ringer's PD, CQ and QP pair, once. */
static int nic_setup(void)
{
	struct ibv_qp_init_attr attr;
	int i, err;

	if (nic.qp[1])
		return 0;
	nic.pd = ibv_alloc_pd(nic.ctx);
	nic.cq = nic.pd ? ibv_create_cq(nic.ctx, 2 * NIC_RING_DEPTH, NULL, NULL, 0) : NULL;
	if (!nic.cq) {
		fprintf(stderr, " Doorbell mode nic: the ringer's PD or CQ on %s: %s\n",
			ibv_get_device_name(nic.ctx->device), strerror(errno));
		return FAILURE;
	}
	memset(&attr, 0, sizeof(attr));
	attr.send_cq = nic.cq;
	attr.recv_cq = nic.cq;
	attr.qp_type = IBV_QPT_RC;
	attr.cap.max_send_wr = NIC_RING_DEPTH;
	attr.cap.max_recv_wr = 1;
	attr.cap.max_send_sge = 1;
	attr.cap.max_recv_sge = 1;
	/* the value travels inline: each ring's copy is taken at post time */
	attr.cap.max_inline_data = sizeof(uint32_t);
	for (i = 0; i < 2; i++) {
		nic.qp[i] = ibv_create_qp(nic.pd, &attr);
		if (!nic.qp[i]) {
			fprintf(stderr, " Doorbell mode nic: the ringer's QP on %s: %s\n",
				ibv_get_device_name(nic.ctx->device), strerror(errno));
			return FAILURE;
		}
	}
	for (i = 0; i < 2; i++) {
		err = nic_qp_to_rts(nic.qp[i], nic.qp[!i]->qp_num);
		if (err) {
			fprintf(stderr, " Doorbell mode nic: connecting the ringer's QPs on %s: %s\n",
				ibv_get_device_name(nic.ctx->device), strerror(err));
			return FAILURE;
		}
	}
	return 0;
}

static int nic_qp_created(struct pingpong_context *ctx, struct perftest_parameters *user_param,
			  struct ibv_qp *qp, int qp_index)
{
	struct staged_qp *s = staged_qp_created(user_param, qp, qp_index);

	if (!s || nic_open(ctx->context) || nic_setup())
		return FAILURE;
	/* rxe1's MR over rxe0's doorbell page: writes only, as exported */
	s->db_mr = ibv_reg_dmabuf_mr(nic.pd, 0, s->db.length, NIC_DB_IOVA, s->db.fd,
				     IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	if (!s->db_mr) {
		fprintf(stderr, " Doorbell mode nic: ibv_reg_dmabuf_mr() of QP %d's doorbell on %s: %s\n",
			qp_index, ibv_get_device_name(nic.ctx->device), strerror(errno));
		return FAILURE;
	}
	/* the MR holds the dma-buf */
	close(s->db.fd);
	s->db.fd = -1;
	return 0;
}

/* Reap ring completions; wait for at least one while more than max are out. */
static int nic_reap(int max)
{
	struct ibv_wc wc[16];
	int n, i;

	do {
		n = ibv_poll_cq(nic.cq, 16, wc);
		if (n < 0) {
			fprintf(stderr, " Doorbell mode nic: polling the ringer's CQ failed\n");
			return FAILURE;
		}
		for (i = 0; i < n; i++) {
			if (wc[i].status != IBV_WC_SUCCESS) {
				fprintf(stderr, " Doorbell mode nic: a ring (RDMA write into the doorbell) failed: %s\n",
					ibv_wc_status_str(wc[i].status));
				return FAILURE;
			}
		}
		nic.outstanding -= n;
	} while (nic.outstanding > max);
	return 0;
}

/*
 * The ring: a 4-byte RDMA WRITE of the producer index, from ring_qp[0]
 * through ring_qp[1] into its MR over the doorbell. Writes on one RC QP
 * land in order, so a later ring never goes below an earlier one; rings in
 * flight coalesce into the engine's next look at the slot.
 */
static int nic_ring(struct pingpong_context *ctx, struct perftest_parameters *user_param,
		    int qp_index)
{
	struct staged_qp *s = staged_of(qp_index);
	struct ibv_send_wr wr, *bad;
	struct ibv_sge sge;
	uint32_t value;
	int err;

	if (!s)
		return FAILURE;
	value = htole32(staged_prod(s));
	sge.addr = (uintptr_t)&value;
	sge.length = sizeof(value);
	sge.lkey = 0;
	memset(&wr, 0, sizeof(wr));
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_RDMA_WRITE;
	wr.send_flags = IBV_SEND_INLINE | IBV_SEND_SIGNALED;
	wr.wr.rdma.remote_addr = NIC_DB_IOVA + s->db.offset;
	wr.wr.rdma.rkey = s->db_mr->rkey;
	if (nic_reap(NIC_RING_DEPTH - 1))
		return FAILURE;
	err = ibv_post_send(nic.qp[0], &wr, &bad);
	if (err) {
		fprintf(stderr, " Doorbell mode nic: posting the ring: %s\n", strerror(err));
		return FAILURE;
	}
	nic.outstanding++;
	return nic_reap(NIC_RING_DEPTH);
}

static void nic_destroy(struct pingpong_context *ctx, struct perftest_parameters *user_param)
{
	int i, tries;

	/* the last rings land before their MRs go (a few ms at most) */
	for (tries = 0; nic.outstanding > 0 && tries < 100000; tries++)
		if (nic_reap(NIC_RING_DEPTH))
			break;
	for (i = 0; i < nr_staged; i++) {
		if (staged[i].db_mr)
			ibv_dereg_mr(staged[i].db_mr);
		if (staged[i].db.fd >= 0 && staged[i].qp)
			close(staged[i].db.fd);
	}
	free(staged);
	staged = NULL;
	nr_staged = 0;
	for (i = 0; i < 2; i++)
		if (nic.qp[i])
			ibv_destroy_qp(nic.qp[i]);
	if (nic.cq)
		ibv_destroy_cq(nic.cq);
	if (nic.pd)
		ibv_dealloc_pd(nic.pd);
	if (nic.ctx)
		ibv_close_device(nic.ctx);
	memset(&nic, 0, sizeof(nic));
}

#else
static const char *needs_nic(struct ibv_context *context,
			     struct perftest_parameters *user_param)
{
	return "needs ibv_reg_dmabuf_mr() in libibverbs; perftest was built without it";
}
#endif /* HAVE_REG_DMABUF_MR */

/* ---- accel: the peer accelerator's store engine rings when the CPU flips a flag ---- */

#ifdef HAVE_LIBP2PACCEL
/*
 * One program per QP, on a context of its own, submitted at the first
 * ring (a WAIT times out after at most 60 s, longer than the test's pauses
 * between posts but not than the connection setup):
 *
 *   WAIT  flag & 1 == 1   <-+
 *   RING  SQ producer       |  ACCEL_LOOPS times
 *   WAIT  flag & 1 == 0     |
 *   RING  SQ producer       |
 *   LOOP  ------------------+
 *
 * The CPU's ring stores flips + 1 into the flag. A flip is seen only as the
 * flag's parity, so two flips in a row could cancel out: the CPU flips
 * again only once the accelerator rang the previous flip (the doorbell
 * value releases WQEs, so a consumed WQE at or past the flip's producer
 * index proves the ring; else the attachment's ring count, an ioctl).
 */
#define ACCEL_LOOPS (1u << 20)
#define ACCEL_WAIT_US 60000000u

static uint64_t *accel_flags;	/* one flag per QP, a page the accelerator reads */

static const char *needs_accel(struct ibv_context *context,
			       struct perftest_parameters *user_param)
{
	struct p2paccel_info info;
	struct ibv_peer_desc peer;
	char path[96];
	struct p2paccel *acc;
	int err;

	acc = p2paccel_open(NULL);
	if (!acc) {
		snprintf(why, sizeof(why), "needs the peer accelerator: cannot open /dev/p2p_accel0: %s (an edu PCI device with p2p_accel.ko loaded, tests/accel)",
			 strerror(errno));
		return why;
	}
	memset(&info, 0, sizeof(info));
	err = p2paccel_query(acc, &info, sizeof(info));
	p2paccel_close(acc);
	if (err) {
		snprintf(why, sizeof(why), "p2paccel_query(): %s", strerror(err));
		return why;
	}
	/* can this very device ring a staged QP's doorbell? */
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%.32s", info.pci_name);
	memset(&peer, 0, sizeof(peer));
	peer.kind = IBV_PEER_SYSFS_DEVICE;
	peer.sysfs_path = path;
	return staged_probe(context, &peer);
}

static int accel_submit(struct staged_qp *s, int qp_index)
{
	struct p2paccel_reject rej;
	struct p2paccel_sq_desc sq;
	uint64_t off = qp_index * sizeof(uint64_t);
	int err;

	if (s->prog)
		p2paccel_prog_free(s->acc, s->prog);
	s->prog = p2paccel_prog_new();
	if (!s->prog)
		return ENOMEM;
	/* the send queue, as ibv_peer_query_sq() describes it */
	memset(&sq, 0, sizeof(sq));
	sq.buf = s->sq.buf;
	sq.wqe_size = s->sq.wqe_size;
	sq.wqe_cnt = s->sq.wqe_cnt;
	sq.prod_index = s->sq.prod_index;
	sq.cons_index = s->sq.cons_index;
	err = p2paccel_prog_set_sq(s->acc, s->prog, &sq, sizeof(sq));
	if (!err)
		err = p2paccel_prog_wait(s->prog, s->flag_handle, off, 8, 1, 1, ACCEL_WAIT_US);
	if (!err)
		err = p2paccel_prog_ring(s->prog, s->db_handle, s->db.offset, 4, 0,
					 P2PACCEL_RING_STORE | P2PACCEL_RING_SQ_PROD);
	if (!err)
		err = p2paccel_prog_wait(s->prog, s->flag_handle, off, 8, 0, 1, ACCEL_WAIT_US);
	if (!err)
		err = p2paccel_prog_ring(s->prog, s->db_handle, s->db.offset, 4, 0,
					 P2PACCEL_RING_STORE | P2PACCEL_RING_SQ_PROD);
	if (!err)
		err = p2paccel_prog_loop(s->prog, 0, ACCEL_LOOPS);
	if (err)
		return err;
	memset(&rej, 0, sizeof(rej));
	err = p2paccel_submit(s->acc, s->prog, &rej, sizeof(rej));
	if (err == EINVAL)
		fprintf(stderr, " Doorbell mode accel: the program was refused at op %u: %s\n",
			rej.op, p2paccel_reject_str(rej.reason));
	s->running = !err;
	return err;
}

static int accel_qp_created(struct pingpong_context *ctx, struct perftest_parameters *user_param,
			    struct ibv_qp *qp, int qp_index)
{
	struct staged_qp *s = staged_qp_created(user_param, qp, qp_index);
	size_t len = sysconf(_SC_PAGESIZE);
	int err;

	if (!s)
		return FAILURE;
	if (!accel_flags) {
		if ((size_t)nr_staged * sizeof(uint64_t) > len ||
		    posix_memalign((void **)&accel_flags, len, len)) {
			fprintf(stderr, " Doorbell mode accel: cannot allocate the flags\n");
			return FAILURE;
		}
		memset(accel_flags, 0, len);
	}
	s->acc = p2paccel_open(NULL);
	if (!s->acc) {
		fprintf(stderr, " Doorbell mode accel: p2paccel_open(): %s\n", strerror(errno));
		return FAILURE;
	}
	err = p2paccel_attach(s->acc, s->db.fd, &s->db_handle);
	if (err) {
		fprintf(stderr, " Doorbell mode accel: attaching QP %d's doorbell dma-buf: %s\n",
			qp_index, strerror(err));
		return FAILURE;
	}
	/* the attachment holds the dma-buf */
	close(s->db.fd);
	s->db.fd = -1;
	err = p2paccel_reg_buf(s->acc, accel_flags, len, 0, &s->flag_handle);
	if (err) {
		fprintf(stderr, " Doorbell mode accel: registering the flag: %s\n", strerror(err));
		return FAILURE;
	}
	return 0;
}

/*
 * Wait until the accelerator rang flip number s->flips.
 *
 * In a latency test (tst == LAT) each post follows the peer's answer to our
 * previous send, so the previous ring read the producer index before this
 * post: a consumed WQE at or past the flip's index then proves the flip's
 * own ring, and reading the consumer index is enough. Elsewhere (a burst
 * of posts) an earlier ring may already have released the flip's WQEs, and
 * only the attachment's ring count (an ioctl) tells.
 */
static int accel_wait_rung(struct staged_qp *s, int latency)
{
	uint32_t mask = s->sq.wqe_cnt - 1, cons, prod;
	struct p2paccel_attach_attr at;
	struct p2paccel_status st;
	int spin, err;

	for (spin = 0;; spin++) {
		if (latency) {
			cons = le32toh(__atomic_load_n((uint32_t *)s->sq.cons_index, __ATOMIC_ACQUIRE));
			prod = staged_prod(s);
			/* cons in [flip_prod, prod]: every WQE before the flip is done */
			if (((cons - s->flip_prod) & mask) <= ((prod - s->flip_prod) & mask))
				return 0;
			if (spin < 64)
				continue;
		}
		memset(&at, 0, sizeof(at));
		err = p2paccel_query_attach(s->acc, s->db_handle, &at, sizeof(at));
		if (err) {
			fprintf(stderr, " Doorbell mode accel: p2paccel_query_attach(): %s\n", strerror(err));
			return FAILURE;
		}
		if (at.rings >= s->flips)
			return 0;
		memset(&st, 0, sizeof(st));
		err = p2paccel_wait(s->acc, 0, &st, sizeof(st));
		if (err != ETIME) {
			fprintf(stderr, " Doorbell mode accel: the accelerator's program stopped: %s (status %d at op %u)\n",
				strerror(err), st.status, st.failed_op);
			s->running = 0;
			return FAILURE;
		}
		sched_yield();
	}
}

static int accel_ring(struct pingpong_context *ctx, struct perftest_parameters *user_param,
		      int qp_index)
{
	struct staged_qp *s = staged_of(qp_index);
	struct p2paccel_status st;
	int err;

	if (!s)
		return FAILURE;
	if (s->flips && accel_wait_rung(s, user_param->tst == LAT))
		return FAILURE;
	if (s->flips % (2ull * ACCEL_LOOPS) == 0) {
		/* the first ring, or the program ran all its loops: (re)start it */
		if (s->running) {
			memset(&st, 0, sizeof(st));
			err = p2paccel_wait(s->acc, 10000, &st, sizeof(st));
			if (err || st.status) {
				fprintf(stderr, " Doorbell mode accel: the accelerator's program ended with %s (status %d)\n",
					strerror(err), st.status);
				return FAILURE;
			}
		}
		err = accel_submit(s, qp_index);
		if (err) {
			fprintf(stderr, " Doorbell mode accel: submitting the ring program: %s\n",
				strerror(err));
			return FAILURE;
		}
	}
	s->flip_prod = staged_prod(s);
	s->flips++;
	/* all the CPU does: the WQEs and the producer index are out (release) */
	__atomic_store_n(&accel_flags[qp_index], s->flips, __ATOMIC_RELEASE);
	return 0;
}

static void accel_destroy(struct pingpong_context *ctx, struct perftest_parameters *user_param)
{
	struct p2paccel_status st;
	int i;

	for (i = 0; i < nr_staged; i++) {
		struct staged_qp *s = &staged[i];

		if (!s->acc) {
			if (s->db.fd >= 0 && s->qp)
				close(s->db.fd);
			continue;
		}
		/* the program stops before the QPs and their doorbells go */
		if (s->running) {
			p2paccel_cancel(s->acc);
			p2paccel_wait(s->acc, 10000, &st, sizeof(st));
		}
		if (s->prog)
			p2paccel_prog_free(s->acc, s->prog);
		/* closing the context detaches and deregisters the rest */
		p2paccel_close(s->acc);
		if (s->db.fd >= 0)
			close(s->db.fd);
	}
	free(staged);
	staged = NULL;
	nr_staged = 0;
	free(accel_flags);
	accel_flags = NULL;
}
#else
static const char *needs_accel(struct ibv_context *context,
			       struct perftest_parameters *user_param)
{
	return "needs the peer accelerator's library (libp2paccel, tests/accel); perftest was built without it";
}
#endif /* HAVE_LIBP2PACCEL */
#else
static const char *needs_page(struct ibv_context *context,
			      struct perftest_parameters *user_param)
{
	return "needs an rdma-core with the peer doorbell verbs (infiniband/peer_db.h) to ring and check a doorbell page; perftest was built without them";
}

static const char *needs_nic(struct ibv_context *context,
			     struct perftest_parameters *user_param)
{
	return "needs an rdma-core with the peer doorbell verbs (infiniband/peer_db.h) for staged QPs and their exported doorbells; perftest was built without them";
}

#define needs_accel needs_nic
#endif

static const struct doorbell_mode_ops doorbell_modes[] = {
	[DOORBELL_DEFAULT] = {
		.name = "default",
	},
	[DOORBELL_SYSCALL] = {
		.name = "syscall",
		.help = "the provider's system call kick, as stock rxe",
		.env = "syscall",
#ifdef HAVE_PEER_DB
		.unavailable = needs_syscall,
		.qp_created = syscall_qp_created,
#endif
	},
	[DOORBELL_PAGE] = {
		.name = "page",
		.help = "the CPU stores the producer index into the QP's doorbell page",
		.env = "page",
		.unavailable = needs_page,
#ifdef HAVE_PEER_DB
		.qp_created = page_qp_created,
#endif
	},
	[DOORBELL_NIC] = {
		.name = "nic",
		.help = "each send staged, then rung by an RDMA write from a second device into an MR over the exported doorbell",
		.unavailable = needs_nic,
#if defined(HAVE_PEER_DB) && defined(HAVE_REG_DMABUF_MR)
		.create_qp = staged_mode_create_qp,
		.qp_created = nic_qp_created,
		.ring = nic_ring,
		.destroy = nic_destroy,
#endif
	},
	[DOORBELL_ACCEL] = {
		.name = "accel",
		.help = "each send staged, then rung by the peer accelerator when the CPU flips a flag",
		.unavailable = needs_accel,
#if defined(HAVE_PEER_DB) && defined(HAVE_LIBP2PACCEL)
		.create_qp = staged_mode_create_qp,
		.qp_created = accel_qp_created,
		.ring = accel_ring,
		.destroy = accel_destroy,
#endif
	},
};

#define DOORBELL_NR_MODES ((int)(sizeof(doorbell_modes) / sizeof(doorbell_modes[0])))

static const struct doorbell_mode_ops *mode_ops(const struct perftest_parameters *user_param)
{
	return &doorbell_modes[user_param->doorbell_mode];
}

int doorbell_mode_parse(const char *s)
{
	int m;

	/* "default" is what no option means, not a mode to ask for */
	for (m = DOORBELL_DEFAULT + 1; m < DOORBELL_NR_MODES; m++)
		if (!strcmp(s, doorbell_modes[m].name))
			return m;
	return -1;
}

int doorbell_mode_prepare(int mode)
{
	if (mode > DOORBELL_DEFAULT && mode < DOORBELL_NR_MODES && doorbell_modes[mode].env &&
	    setenv(RXE_DOORBELL_ENV, doorbell_modes[mode].env, 1)) {
		fprintf(stderr, " Couldn't set %s: %s\n", RXE_DOORBELL_ENV, strerror(errno));
		return FAILURE;
	}
	return 0;
}

const char *doorbell_mode_name(int mode)
{
	if (mode < 0 || mode >= DOORBELL_NR_MODES)
		return "unknown";
	return doorbell_modes[mode].name;
}

void doorbell_mode_usage(void)
{
	int m;

	printf("      --doorbell=<mode> ");
	printf(" How a post rings the send queue's doorbell:\n");
	for (m = DOORBELL_DEFAULT + 1; m < DOORBELL_NR_MODES; m++)
		printf("\t\t\t  %-8s %s\n", doorbell_modes[m].name, doorbell_modes[m].help);
	printf("\t\t\t  A mode this stack cannot run stops the test with what it needs.\n");
}

int doorbell_mode_check(struct ibv_context *context, struct perftest_parameters *user_param)
{
	const struct doorbell_mode_ops *ops = mode_ops(user_param);
	const char *missing;

	if (!ops->unavailable)
		return 0;
	missing = ops->unavailable(context, user_param);
	if (!missing)
		return 0;
	fprintf(stderr, " Doorbell mode %s is not available on %s: %s\n",
		ops->name, ibv_get_device_name(context->device), missing);
	return FAILURE;
}

int doorbell_mode_has_create(const struct perftest_parameters *user_param)
{
	return mode_ops(user_param)->create_qp != NULL;
}

struct ibv_qp *doorbell_mode_create_qp_ex(struct pingpong_context *ctx,
					  struct perftest_parameters *user_param,
					  struct ibv_qp_init_attr_ex *attr)
{
	const struct doorbell_mode_ops *ops = mode_ops(user_param);

	if (!ops->create_qp) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	return ops->create_qp(ctx, user_param, attr);
}

struct ibv_qp *doorbell_mode_create_qp(struct pingpong_context *ctx,
				       struct perftest_parameters *user_param,
				       struct ibv_qp_init_attr *attr)
{
	struct ibv_qp_init_attr_ex attr_ex;
	struct ibv_qp *qp;

	memset(&attr_ex, 0, sizeof(attr_ex));
	attr_ex.comp_mask = IBV_QP_INIT_ATTR_PD;
	attr_ex.pd = ctx->pd;
	attr_ex.qp_context = attr->qp_context;
	attr_ex.send_cq = attr->send_cq;
	attr_ex.recv_cq = attr->recv_cq;
	attr_ex.srq = attr->srq;
	attr_ex.cap = attr->cap;
	attr_ex.qp_type = attr->qp_type;
	attr_ex.sq_sig_all = attr->sq_sig_all;
	qp = doorbell_mode_create_qp_ex(ctx, user_param, &attr_ex);
	if (qp)
		attr->cap = attr_ex.cap;
	return qp;
}

int doorbell_mode_qp_created(struct pingpong_context *ctx,
			     struct perftest_parameters *user_param,
			     struct ibv_qp *qp, int qp_index)
{
	const struct doorbell_mode_ops *ops = mode_ops(user_param);

	return ops->qp_created ? ops->qp_created(ctx, user_param, qp, qp_index) : 0;
}

int doorbell_mode_ring(struct pingpong_context *ctx,
		       struct perftest_parameters *user_param, int qp_index)
{
	const struct doorbell_mode_ops *ops = mode_ops(user_param);

	return ops->ring ? ops->ring(ctx, user_param, qp_index) : 0;
}

void doorbell_mode_destroy(struct pingpong_context *ctx,
			   struct perftest_parameters *user_param)
{
	const struct doorbell_mode_ops *ops = mode_ops(user_param);

	if (ops->destroy)
		ops->destroy(ctx, user_param);
}
