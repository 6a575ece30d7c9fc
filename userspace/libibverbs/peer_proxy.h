/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * The CPU proxy of the peer doorbell verbs (peer_proxy.c): libibverbs'
 * private interface between peer_db.c, the QP and context teardown in
 * verbs.c and device.c, and the proxy.
 */

#ifndef PEER_PROXY_H
#define PEER_PROXY_H

#include <stdint.h>
#include <infiniband/verbs.h>

struct ibv_peer_qp_init_attr;
struct ibv_peer_sq_attr;
struct ibv_peer_db_dmabuf;
struct ibv_peer_db_caps;
struct peer_proxy_qp;

/* Create a staged QP whose doorbell is the proxy's; reason: why not direct. */
struct ibv_qp *peer_proxy_create_qp(struct ibv_context *context,
				    struct ibv_qp_init_attr_ex *qp_attr,
				    const struct ibv_peer_qp_init_attr *peer_attr,
				    uint32_t reason);

/* The proxy's part of a peer verb: returns 1 when qp is not a proxy QP. */
int peer_proxy_query_sq(struct ibv_qp *qp, struct ibv_peer_sq_attr *attr);
int peer_proxy_export_db(struct ibv_qp *qp, uint32_t flags,
			 struct ibv_peer_db_dmabuf *dmabuf);
int peer_proxy_probe_db(struct ibv_qp *qp, struct ibv_peer_db_caps *caps);

/*
 * ibv_destroy_qp(): take a proxy QP out of the proxy before the provider
 * destroys it (NULL for any other QP), then free it, or put it back when
 * the destroy failed.
 */
struct peer_proxy_qp *peer_proxy_detach_qp(struct ibv_qp *qp);
void peer_proxy_destroy_qp(struct peer_proxy_qp *pq, int destroy_ret);

/* ibv_close_device(): stop the context's proxy thread, free its QPs' state. */
void peer_proxy_close(struct ibv_context *context);

#endif /* PEER_PROXY_H */
