/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * What rxe_dmabuf_mr writes into the p2p_mmap_test module's exports, and
 * p2p_mmap_ktest checks through its own mappings of them.
 */
#ifndef RXE_DMABUF_MR_H
#define RXE_DMABUF_MR_H

/* byte offset of the word written in each export */
#define RXE_DMABUF_MR_OFFSET 64
/* the value written there through the MR */
#define RXE_DMABUF_MR_PATTERN(kind) (0x7e0d0000u + (kind))
/* the value tried after revocation, which must never land */
#define RXE_DMABUF_MR_LATE 0x1a7e1a7eu

#endif /* RXE_DMABUF_MR_H */
