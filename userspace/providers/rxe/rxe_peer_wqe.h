/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * A header-only builder of rxe send WQEs (IBV_PEER_WQE_FORMAT_RXE), for peers
 * that post to an rxe QP without the CPU: a GPU kernel, an accelerator's
 * firmware, or a CPU thread standing in for one. It writes exactly the
 * fields the rxe provider writes for the same work request.
 *
 * Plain C99: no libc, no allocation, only <stdint.h> and the kernel's uapi
 * header, which holds the one definition of the WQE layout. Device
 * compilers hook in through three macros, defined before the include:
 *
 *   RXE_PEER_WQE_QUALIFIERS  added to every function, e.g. __device__
 *   RXE_PEER_WQE_FENCE()     orders earlier stores before later ones as the
 *                            NIC sees them; default a release fence, e.g.
 *                            __threadfence_system() on a GPU
 *   RXE_PEER_WQE_STORE32(p, v) one 32-bit store that is not split or
 *                            merged; default a volatile store
 *
 * See rxe_peer_wqe(7) and ibv_peer_query_sq(3).
 */

#ifndef INFINIBAND_RXE_PEER_WQE_H
#define INFINIBAND_RXE_PEER_WQE_H

#include <stdint.h>
#include <rdma/rdma_user_rxe.h>

#ifndef RXE_PEER_WQE_QUALIFIERS
#define RXE_PEER_WQE_QUALIFIERS
#endif

#ifndef RXE_PEER_WQE_FENCE
#define RXE_PEER_WQE_FENCE() __atomic_thread_fence(__ATOMIC_RELEASE)
#endif

#ifndef RXE_PEER_WQE_STORE32
#define RXE_PEER_WQE_STORE32(p, v) (*(volatile uint32_t *)(p) = (v))
#endif

#define RXE_PEER_WQE_FN static inline RXE_PEER_WQE_QUALIFIERS

/*
 * A producer's view of an rxe send queue, from struct ibv_peer_sq_attr.
 * prod is the producer's own copy of the producer index; db is where this
 * producer rings: the db of ibv_peer_query_sq() for a CPU, or the peer's
 * mapping of the dma-buf of ibv_peer_export_db() plus its offset.
 */
struct rxe_peer_sq {
	uint8_t *buf;
	uint32_t wqe_size;
	uint32_t mask;
	uint32_t *prod_index;
	const uint32_t *cons_index;
	void *db;
	uint32_t prod;
};

RXE_PEER_WQE_FN void rxe_peer_sq_init(struct rxe_peer_sq *sq, void *buf,
				      uint32_t wqe_size, uint32_t wqe_cnt,
				      void *prod_index, const void *cons_index,
				      void *db)
{
	sq->buf = (uint8_t *)buf;
	sq->wqe_size = wqe_size;
	sq->mask = wqe_cnt - 1;
	sq->prod_index = (uint32_t *)prod_index;
	sq->cons_index = (const uint32_t *)cons_index;
	sq->db = db;
	sq->prod = *(volatile uint32_t *)prod_index;
}

RXE_PEER_WQE_FN struct rxe_send_wqe *rxe_peer_sq_wqe(const struct rxe_peer_sq *sq,
						     uint32_t index)
{
	return (struct rxe_send_wqe *)(sq->buf +
				       (uint64_t)(index & sq->mask) * sq->wqe_size);
}

/* Free WQEs in the ring: one slot always stays empty. */
RXE_PEER_WQE_FN uint32_t rxe_peer_sq_room(const struct rxe_peer_sq *sq)
{
	uint32_t cons = *(const volatile uint32_t *)sq->cons_index;

	return (cons - sq->prod - 1) & sq->mask;
}

/* The WQE to fill next (sq->prod), or 0 if the ring is full. */
RXE_PEER_WQE_FN struct rxe_send_wqe *rxe_peer_sq_next(const struct rxe_peer_sq *sq)
{
	if (!rxe_peer_sq_room(sq))
		return 0;
	return rxe_peer_sq_wqe(sq, sq->prod);
}

/*
 * Begin a WQE: opcode is an enum ib_uverbs_wr_opcode (the same values as
 * enum ibv_wr_opcode), send_flags enum ibv_send_flags bits.
 */
RXE_PEER_WQE_FN void rxe_peer_wqe_start(struct rxe_send_wqe *wqe,
					uint32_t opcode, uint64_t wr_id,
					uint32_t send_flags)
{
	uint8_t *w = (uint8_t *)&wqe->wr;
	uint32_t i;

	for (i = 0; i < sizeof(wqe->wr); i++)
		w[i] = 0;
	wqe->wr.wr_id = wr_id;
	wqe->wr.opcode = opcode;
	wqe->wr.send_flags = send_flags;
	wqe->iova = 0;
	wqe->dma.length = 0;
	wqe->dma.resid = 0;
	wqe->dma.num_sge = 0;
	wqe->dma.cur_sge = 0;
	wqe->dma.sge_offset = 0;
	wqe->state = 0;
}

/* RDMA WRITE (with immediate) and RDMA READ: the remote buffer. */
RXE_PEER_WQE_FN void rxe_peer_wqe_set_rdma(struct rxe_send_wqe *wqe,
					   uint64_t remote_addr, uint32_t rkey)
{
	wqe->wr.wr.rdma.remote_addr = remote_addr;
	wqe->wr.wr.rdma.rkey = rkey;
	wqe->iova = remote_addr;
}

/* Compare-and-swap and fetch-and-add: the remote 8 bytes and operands. */
RXE_PEER_WQE_FN void rxe_peer_wqe_set_atomic(struct rxe_send_wqe *wqe,
					     uint64_t remote_addr, uint32_t rkey,
					     uint64_t compare_add, uint64_t swap)
{
	wqe->wr.wr.atomic.remote_addr = remote_addr;
	wqe->wr.wr.atomic.rkey = rkey;
	wqe->wr.wr.atomic.compare_add = compare_add;
	wqe->wr.wr.atomic.swap = swap;
	wqe->iova = remote_addr;
}

/* The immediate data of a SEND or RDMA WRITE with immediate, big-endian. */
RXE_PEER_WQE_FN void rxe_peer_wqe_set_imm(struct rxe_send_wqe *wqe,
					  uint32_t imm_be)
{
	wqe->wr.ex.imm_data = imm_be;
}

/* One local buffer; the WQE's length is the sum of its buffers. */
RXE_PEER_WQE_FN void rxe_peer_wqe_add_sge(struct rxe_send_wqe *wqe,
					  uint64_t addr, uint32_t length,
					  uint32_t lkey)
{
	struct rxe_sge *sge = &wqe->dma.sge[wqe->dma.num_sge++];

	sge->addr = addr;
	sge->length = length;
	sge->lkey = lkey;
	wqe->dma.length += length;
	wqe->dma.resid += length;
}

/*
 * Inline data (send_flags has IBV_SEND_INLINE): at most max_inline bytes
 * of ibv_peer_query_sq(), copied into the WQE.
 */
RXE_PEER_WQE_FN void rxe_peer_wqe_set_inline(struct rxe_send_wqe *wqe,
					     const void *data, uint32_t length)
{
	const uint8_t *src = (const uint8_t *)data;
	uint32_t i;

	for (i = 0; i < length; i++)
		wqe->dma.inline_data[i] = src[i];
	wqe->dma.num_sge = 1;
	wqe->dma.length = length;
	wqe->dma.resid = length;
}

/*
 * Publish the WQEs written since the last call: after them, store the new
 * producer index into the queue. n is how many were written.
 */
RXE_PEER_WQE_FN void rxe_peer_sq_produce(struct rxe_peer_sq *sq, uint32_t n)
{
	sq->prod = (sq->prod + n) & sq->mask;
	RXE_PEER_WQE_FENCE();
	RXE_PEER_WQE_STORE32(sq->prod_index, sq->prod);
}

/* A ring: value, little-endian, into the doorbell slot at db. */
RXE_PEER_WQE_FN void rxe_peer_ring(void *db, uint32_t value)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	value = __builtin_bswap32(value);
#endif
	RXE_PEER_WQE_STORE32(db, value);
}

/*
 * Ring for everything produced so far, after the producer index. A QP
 * created with IBV_PEER_QP_RING_BY_PEER notices the ring by itself.
 */
RXE_PEER_WQE_FN void rxe_peer_sq_ring(struct rxe_peer_sq *sq)
{
	RXE_PEER_WQE_FENCE();
	rxe_peer_ring(sq->db, sq->prod);
}

#undef RXE_PEER_WQE_FN

#endif /* INFINIBAND_RXE_PEER_WQE_H */
