/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * --doorbell=<mode>: how the send queue's doorbell is rung after a post, in
 * ib_write_lat, ib_send_lat and ib_write_bw.
 *
 *   syscall  the provider's system call kick, as stock rxe does
 *   page     the CPU stores the producer index into the QP's doorbell page
 *   nic      each send is staged, then rung by an RDMA write from a second
 *            RDMA device into an MR over the exported doorbell
 *   accel    staged, then rung by the peer accelerator when the CPU flips
 *            a flag
 *
 * A mode is a row of doorbell_modes[] (doorbell_mode.c): what it needs from
 * the stack, how its QPs are created, and what rings after a post. A mode
 * the stack cannot do stops the test before it connects, with a message
 * naming what is missing, and a non-zero exit.
 *
 * Hooks in perftest: the parser (doorbell_mode_parse, doorbell_mode_prepare), the device check
 * (doorbell_mode_check, from verify_params_with_device_context), QP
 * creation (doorbell_mode_qp_created, and doorbell_mode_create_qp for modes
 * whose QPs need create-time flags), every post of the three tests
 * (doorbell_mode_ring), teardown (doorbell_mode_destroy), and the header
 * block and JSON report (doorbell_mode_name).
 */

#ifndef DOORBELL_MODE_H
#define DOORBELL_MODE_H

#include <infiniband/verbs.h>

struct perftest_parameters;
struct pingpong_context;

enum doorbell_mode {
	DOORBELL_DEFAULT = 0,	/* no --doorbell: whatever the provider does */
	DOORBELL_SYSCALL,
	DOORBELL_PAGE,
	DOORBELL_NIC,
	DOORBELL_ACCEL,
};

/* The mode named s, or -1 (the parser prints the choices). */
int doorbell_mode_parse(const char *s);

/*
 * Before the device is opened: tell the provider how to ring (rxe reads
 * RXE_DOORBELL when a device is opened). Non-zero after a message on failure.
 */
int doorbell_mode_prepare(int mode);

/* "syscall", ..., or "default" when no --doorbell was given. */
const char *doorbell_mode_name(int mode);

/* The --help lines. */
void doorbell_mode_usage(void);

/*
 * 0 when the device and the libraries can run the mode; otherwise prints
 * what the mode needs and returns non-zero. Called once the device is open,
 * before the test connects to its peer.
 */
int doorbell_mode_check(struct ibv_context *context, struct perftest_parameters *user_param);

/*
 * Modes whose QPs need create-time flags create them here; NULL with errno
 * set on failure. doorbell_mode_has_create() says whether a mode does.
 * _ex for the ibv_wr_* path (ibv_create_qp_ex() attributes), the other for
 * --use_old_post_send (ibv_create_qp() attributes, whose cap it updates).
 */
int doorbell_mode_has_create(const struct perftest_parameters *user_param);
struct ibv_qp *doorbell_mode_create_qp_ex(struct pingpong_context *ctx,
					  struct perftest_parameters *user_param,
					  struct ibv_qp_init_attr_ex *attr);
struct ibv_qp *doorbell_mode_create_qp(struct pingpong_context *ctx,
				       struct perftest_parameters *user_param,
				       struct ibv_qp_init_attr *attr);

/*
 * Every QP of the test passes here once created: the mode checks that the
 * QP really rings its way (a page mode QP has a doorbell page, ...).
 * Returns non-zero, after a message, when it does not.
 */
int doorbell_mode_qp_created(struct pingpong_context *ctx,
			     struct perftest_parameters *user_param,
			     struct ibv_qp *qp, int qp_index);

/*
 * After each successful post: the ring of modes whose sends are staged.
 * A no-op for syscall and page, which the provider rings in the post.
 */
int doorbell_mode_ring(struct pingpong_context *ctx,
		       struct perftest_parameters *user_param, int qp_index);

void doorbell_mode_destroy(struct pingpong_context *ctx,
			   struct perftest_parameters *user_param);

#endif /* DOORBELL_MODE_H */
