/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * efa_peer.c: the peer doorbell verbs on EFA (verbs_context_ops entries).
 */

#ifndef EFA_PEER_H
#define EFA_PEER_H

#include <infiniband/driver.h>

struct ibv_peer_qp_init_attr;
struct ibv_peer_sq_attr;
struct ibv_peer_cq_attr;
struct ibv_peer_db_dmabuf;
struct ibv_peer_desc;
struct ibv_peer_db_caps;

struct ibv_qp *efa_peer_create_qp(struct ibv_context *context,
				  struct ibv_qp_init_attr_ex *qp_attr,
				  const struct ibv_peer_qp_init_attr *peer_attr);
int efa_peer_query_sq(struct ibv_qp *ibqp, struct ibv_peer_sq_attr *attr);
int efa_peer_query_cq(struct ibv_cq *ibcq, struct ibv_peer_cq_attr *attr);
int efa_peer_export_db(struct ibv_qp *ibqp, uint32_t flags,
		       struct ibv_peer_db_dmabuf *dmabuf);
int efa_peer_probe_db(struct ibv_qp *ibqp, const struct ibv_peer_desc *peer,
		      struct ibv_peer_db_caps *caps);

#endif /* EFA_PEER_H */
