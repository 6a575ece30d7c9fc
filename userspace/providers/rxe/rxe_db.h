/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * Doorbell pages of the rxe provider. The kernel gives a QP that asks for it
 * a slot in a per-context doorbell page (struct rxe_db_slot of
 * <rdma/rdma_user_rxe.h>); the provider maps each page once per context and
 * rings by storing the SQ producer index into the slot, with a system call
 * only when the kernel's doorbell engine sleeps.
 */

#ifndef RXE_DB_H
#define RXE_DB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <ccan/list.h>
#include <infiniband/driver.h>
#include <rdma/rdma_user_rxe.h>

struct rxe_context;
struct rxe_qp;
struct urxe_create_qp;
struct urxe_create_qp_resp;
struct urxe_create_qp_ex;
struct urxe_create_qp_ex_resp;

/* What we learnt about the kernel, per context; starts unknown. */
enum rxe_db_kernel {
	RXE_DB_KERNEL_UNKNOWN,
	RXE_DB_KERNEL_YES,	/* it granted a doorbell slot */
	RXE_DB_KERNEL_NO,	/* it refused the request: stock rxe */
};

/* One mapped doorbell page, shared by the context's QPs that have a slot in it. */
struct rxe_db_page {
	struct list_node	entry;		/* in rxe_db_context.pages */
	uint64_t		offset;		/* mmap offset, from the kernel */
	void			*addr;
	unsigned int		refs;		/* QPs with a slot in it */
};

struct rxe_db_context {
	pthread_mutex_t		lock;		/* guards pages */
	struct list_head	pages;
	/* RXE_DOORBELL=syscall: CPU posts kick, plain QPs ask for no slot */
	bool			syscall;
	/* enum rxe_db_kernel; read and set without the lock */
	atomic_int		kernel;
	/* enum rxe_db_kernel, for UVERBS_METHOD_DMABUF_ALLOC of our pages */
	atomic_int		export;
};

/* The doorbell of one QP; all zero when it rings with a system call. */
struct rxe_qp_db {
	struct rxe_db_page	*page;
	struct rxe_db_slot	*slot;
	uint32_t		index;
	uint32_t		flags;		/* granted RXE_CREATE_QP_* */
	bool			cpu_rings;	/* our posts ring the slot */
};

void rxe_db_context_init(struct rxe_context *ctx);
void rxe_db_context_cleanup(struct rxe_context *ctx);

int rxe_db_cmd_create_qp(struct ibv_pd *pd, struct rxe_qp *qp,
			 struct ibv_qp_init_attr *attr,
			 struct urxe_create_qp *cmd,
			 struct urxe_create_qp_resp *resp);
int rxe_db_cmd_create_qp_ex(struct ibv_context *context, struct rxe_qp *qp,
			    struct ibv_qp_init_attr_ex *attr, uint32_t want,
			    struct urxe_create_qp_ex *cmd,
			    struct urxe_create_qp_ex_resp *resp);
int rxe_db_qp_init(struct rxe_qp *qp, const struct rxe_create_qp_resp *resp);
void rxe_db_qp_cleanup(struct rxe_qp *qp);
bool rxe_db_ring(struct rxe_qp *qp);

#endif /* RXE_DB_H */
