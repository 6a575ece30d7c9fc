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

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#if defined(HAVE_INFINIBAND_PEER_DB_H) && defined(HAVE_IBV_PEER_QUERY_SQ)
#include <infiniband/peer_db.h>
#define HAVE_PEER_DB 1
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
				    struct ibv_qp_init_attr *attr);
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

static const char *needs_nic(struct ibv_context *context,
			     struct perftest_parameters *user_param)
{
	return "needs dma-buf MRs on rxe (ibv_reg_dmabuf_mr over an exported doorbell) and staged sends; not in this build";
}

static const char *needs_accel(struct ibv_context *context,
			       struct perftest_parameters *user_param)
{
	return "needs the peer accelerator (its driver and library) and staged sends; not in this build";
}

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

/* The same answer for a throwaway RC QP of the device, before the test. */
static int device_qp_has_page(struct ibv_context *context)
{
	struct ibv_qp_init_attr attr;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	int ret = -1;

	pd = ibv_alloc_pd(context);
	cq = pd ? ibv_create_cq(context, 1, NULL, NULL, 0) : NULL;
	if (!cq) {
		snprintf(why, sizeof(why), "cannot create a PD and CQ to check: %s", strerror(errno));
		goto out;
	}
	memset(&attr, 0, sizeof(attr));
	attr.send_cq = cq;
	attr.recv_cq = cq;
	attr.qp_type = IBV_QPT_RC;
	attr.cap.max_send_wr = 1;
	attr.cap.max_recv_wr = 1;
	attr.cap.max_send_sge = 1;
	attr.cap.max_recv_sge = 1;
	qp = ibv_create_qp(pd, &attr);
	if (!qp) {
		snprintf(why, sizeof(why), "cannot create a QP to check: %s", strerror(errno));
		goto out;
	}
	ret = qp_has_page(qp);
	ibv_destroy_qp(qp);
out:
	if (cq)
		ibv_destroy_cq(cq);
	if (pd)
		ibv_dealloc_pd(pd);
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
#else
static const char *needs_page(struct ibv_context *context,
			      struct perftest_parameters *user_param)
{
	return "needs an rdma-core with the peer doorbell verbs (infiniband/peer_db.h) to ring and check a doorbell page; perftest was built without them";
}
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
	},
	[DOORBELL_ACCEL] = {
		.name = "accel",
		.help = "each send staged, then rung by the peer accelerator when the CPU flips a flag",
		.unavailable = needs_accel,
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

struct ibv_qp *doorbell_mode_create_qp(struct pingpong_context *ctx,
				       struct perftest_parameters *user_param,
				       struct ibv_qp_init_attr *attr)
{
	const struct doorbell_mode_ops *ops = mode_ops(user_param);

	if (!ops->create_qp) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	return ops->create_qp(ctx, user_param, attr);
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
