# SPDX-License-Identifier: (GPL-2.0 OR Linux-OpenIB)
# Copyright (c) 2026 rdma-p2p-doorbell developers

#cython: language_level=3

from libc.stdint cimport uint8_t, uint32_t, int32_t, uint64_t

cimport pyverbs.libibverbs as v
from pyverbs.base cimport PyverbsObject
from pyverbs.qp cimport QP


cdef extern from 'infiniband/peer_db.h':

    cpdef enum ibv_peer_qp_flags:
        IBV_PEER_QP_RING_BY_PEER
        IBV_PEER_QP_DEDICATED_DB
        IBV_PEER_QP_STAGED
        IBV_PEER_QP_PROXY

    cpdef enum ibv_peer_wqe_format:
        IBV_PEER_WQE_FORMAT_NONE
        IBV_PEER_WQE_FORMAT_RXE

    cpdef enum ibv_peer_cqe_format:
        IBV_PEER_CQE_FORMAT_NONE
        IBV_PEER_CQE_FORMAT_UVERBS_WC

    cpdef enum ibv_peer_index_format:
        IBV_PEER_INDEX_NONE
        IBV_PEER_INDEX_WRAPPED

    cpdef enum ibv_peer_byte_order:
        IBV_PEER_LITTLE_ENDIAN
        IBV_PEER_BIG_ENDIAN

    cpdef enum ibv_peer_db_value:
        IBV_PEER_DB_VALUE_NONE
        IBV_PEER_DB_VALUE_PROD_INDEX

    cpdef enum ibv_peer_sq_flags:
        IBV_PEER_SQ_STAGED
        IBV_PEER_SQ_RING_BY_PEER
        IBV_PEER_SQ_DEDICATED_DB
        IBV_PEER_SQ_PROXY

    cpdef enum ibv_peer_export_flags:
        IBV_PEER_EXPORT_EXCLUSIVE

    cpdef enum ibv_peer_dmabuf_flags:
        IBV_PEER_DMABUF_DEDICATED
        IBV_PEER_DMABUF_WRITE_ONLY
        IBV_PEER_DMABUF_REVOCABLE

    cpdef enum ibv_peer_kind:
        IBV_PEER_ANY_DEVICE
        IBV_PEER_SYSFS_DEVICE
        IBV_PEER_RDMA_DEVICE

    cpdef enum ibv_peer_db_method:
        IBV_PEER_DB_METHOD_NONE
        IBV_PEER_DB_METHOD_DMABUF
        IBV_PEER_DB_METHOD_CPU_MAPPING
        IBV_PEER_DB_METHOD_PROXY

    cpdef enum ibv_peer_db_reason:
        IBV_PEER_DB_OK
        IBV_PEER_DB_NO_PROVIDER_SUPPORT
        IBV_PEER_DB_KERNEL_TOO_OLD
        IBV_PEER_DB_NO_P2P_PATH
        IBV_PEER_DB_QP_NOT_FOR_PEER
        IBV_PEER_DB_PEER_CANNOT_IMPORT
        IBV_PEER_DB_DISABLED

    cpdef enum ibv_peer_db_backing:
        IBV_PEER_DB_BACKING_NONE
        IBV_PEER_DB_BACKING_HOST
        IBV_PEER_DB_BACKING_BAR

    cpdef enum ibv_peer_db_caps_flags:
        IBV_PEER_DB_CAPS_DEDICATED
        IBV_PEER_DB_CAPS_STAGED
        IBV_PEER_DB_CAPS_PATH_UNCHECKED

    cpdef enum ibv_peer_db_caps_mask:
        IBV_PEER_DB_CAPS_MASK_PROXY_COST

    cdef struct ibv_peer_qp_init_attr:
        uint64_t comp_mask
        uint32_t flags

    cdef struct ibv_peer_sq_attr:
        uint64_t comp_mask
        void *buf
        uint32_t wqe_size
        uint32_t wqe_cnt
        uint32_t wqe_format
        uint32_t max_sge
        uint32_t max_inline
        uint32_t max_batch
        void *prod_index
        const void *cons_index
        uint32_t index_format
        uint32_t index_width
        uint32_t index_byte_order
        uint32_t flags
        void *db
        uint32_t db_width
        uint32_t db_byte_order
        uint32_t db_value

    cdef struct ibv_peer_cq_attr:
        uint64_t comp_mask
        void *buf
        uint32_t cqe_size
        uint32_t cqe_cnt
        uint32_t cqe_format
        uint32_t index_format
        const void *prod_index
        void *cons_index
        uint32_t index_width
        uint32_t index_byte_order

    cdef struct ibv_peer_db_dmabuf:
        uint64_t comp_mask
        int32_t fd
        uint32_t flags
        uint64_t offset
        uint64_t length

    cdef struct ibv_peer_desc:
        uint64_t comp_mask
        uint32_t kind
        const char *sysfs_path
        v.ibv_context *rdma_ctx

    cdef struct ibv_peer_db_caps:
        uint64_t comp_mask
        uint32_t method
        uint32_t methods
        uint32_t reason
        uint32_t backing
        uint32_t flags
        uint32_t max_ring_delay_us
        uint32_t proxy_spin_us

    v.ibv_qp *ibv_peer_create_qp(v.ibv_context *context,
                                 v.ibv_qp_init_attr_ex *qp_attr,
                                 const ibv_peer_qp_init_attr *peer_attr,
                                 size_t inlen)
    int ibv_peer_query_sq(v.ibv_qp *qp, ibv_peer_sq_attr *attr, size_t inlen)
    int ibv_peer_query_cq(v.ibv_cq *cq, ibv_peer_cq_attr *attr, size_t inlen)
    int ibv_peer_export_db(v.ibv_qp *qp, uint32_t flags,
                           ibv_peer_db_dmabuf *dmabuf, size_t inlen)
    int ibv_peer_probe_db(v.ibv_qp *qp, const ibv_peer_desc *peer,
                          ibv_peer_db_caps *caps, size_t inlen)
    const char *ibv_peer_db_method_str(ibv_peer_db_method method)
    const char *ibv_peer_db_reason_str(ibv_peer_db_reason reason)


cdef class PeerQPInitAttr(PyverbsObject):
    cdef ibv_peer_qp_init_attr attr

cdef class PeerSQAttr(PyverbsObject):
    cdef ibv_peer_sq_attr attr

cdef class PeerCQAttr(PyverbsObject):
    cdef ibv_peer_cq_attr attr

cdef class PeerDBDmabuf(PyverbsObject):
    cdef ibv_peer_db_dmabuf attr

cdef class PeerDesc(PyverbsObject):
    cdef ibv_peer_desc desc
    cdef object path
    cdef object ctx

cdef class PeerDBCaps(PyverbsObject):
    cdef ibv_peer_db_caps caps

cdef class PeerQP(QP):
    pass
