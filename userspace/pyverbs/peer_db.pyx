# SPDX-License-Identifier: (GPL-2.0 OR Linux-OpenIB)
# Copyright (c) 2026 rdma-p2p-doorbell developers
"""
The peer doorbell verbs of <infiniband/peer_db.h>: hand a QP's send queue
and doorbell to a peer device (another RDMA NIC, a GPU, an accelerator).
See ibv_peer_create_qp(3), ibv_peer_query_sq(3), ibv_peer_query_cq(3),
ibv_peer_export_db(3) and ibv_peer_probe_db(3).
"""

#cython: language_level=3

from libc.stdint cimport uintptr_t
from libc.string cimport memset

from pyverbs.base import PyverbsRDMAError, PyverbsRDMAErrno
from pyverbs.base cimport PyverbsObject
from pyverbs.cq cimport CQ
from pyverbs.device cimport Context
from pyverbs.pd cimport PD
from pyverbs.qp cimport QP, QPInitAttrEx, QPAttr
cimport pyverbs.libibverbs as v


def method_str(method):
    """The name of an ibv_peer_db_method (ibv_peer_db_method_str())."""
    return ibv_peer_db_method_str(method).decode()


def reason_str(reason):
    """What an ibv_peer_db_reason means and what to do (ibv_peer_db_reason_str())."""
    return ibv_peer_db_reason_str(reason).decode()


cdef class PeerQPInitAttr(PyverbsObject):
    def __init__(self, flags=0, comp_mask=0):
        """
        How a peer uses a QP (struct ibv_peer_qp_init_attr).
        :param flags: ibv_peer_qp_flags
        :param comp_mask: must be 0
        """
        super().__init__()
        memset(&self.attr, 0, sizeof(self.attr))
        self.attr.flags = flags
        self.attr.comp_mask = comp_mask

    @property
    def flags(self):
        return self.attr.flags
    @flags.setter
    def flags(self, val):
        self.attr.flags = val


cdef class PeerSQAttr(PyverbsObject):
    """A QP's send queue as a peer sees it (struct ibv_peer_sq_attr)."""
    @property
    def buf(self):
        return <uintptr_t>self.attr.buf
    @property
    def wqe_size(self):
        return self.attr.wqe_size
    @property
    def wqe_cnt(self):
        return self.attr.wqe_cnt
    @property
    def wqe_format(self):
        return self.attr.wqe_format
    @property
    def max_sge(self):
        return self.attr.max_sge
    @property
    def max_inline(self):
        return self.attr.max_inline
    @property
    def max_batch(self):
        return self.attr.max_batch
    @property
    def prod_index(self):
        """The producer index's address."""
        return <uintptr_t>self.attr.prod_index
    @property
    def cons_index(self):
        """The consumer index's address."""
        return <uintptr_t>self.attr.cons_index
    @property
    def index_format(self):
        return self.attr.index_format
    @property
    def index_width(self):
        return self.attr.index_width
    @property
    def index_byte_order(self):
        return self.attr.index_byte_order
    @property
    def flags(self):
        return self.attr.flags
    @property
    def db(self):
        """The doorbell's address in this process, or 0."""
        return <uintptr_t>self.attr.db
    @property
    def db_width(self):
        return self.attr.db_width
    @property
    def db_byte_order(self):
        return self.attr.db_byte_order
    @property
    def db_value(self):
        return self.attr.db_value

    def __str__(self):
        return ('PeerSQAttr: {} WQEs of {} bytes, format {}, max batch {}, '
                'flags {:#x}, doorbell {:#x} ({} bytes)'.format(
                    self.wqe_cnt, self.wqe_size, self.wqe_format,
                    self.max_batch, self.flags, self.db, self.db_width))


cdef class PeerCQAttr(PyverbsObject):
    """A CQ's ring as a peer sees it (struct ibv_peer_cq_attr)."""
    @property
    def buf(self):
        return <uintptr_t>self.attr.buf
    @property
    def cqe_size(self):
        return self.attr.cqe_size
    @property
    def cqe_cnt(self):
        return self.attr.cqe_cnt
    @property
    def cqe_format(self):
        return self.attr.cqe_format
    @property
    def index_format(self):
        return self.attr.index_format
    @property
    def prod_index(self):
        return <uintptr_t>self.attr.prod_index
    @property
    def cons_index(self):
        return <uintptr_t>self.attr.cons_index
    @property
    def index_width(self):
        return self.attr.index_width
    @property
    def index_byte_order(self):
        return self.attr.index_byte_order


cdef class PeerDBDmabuf(PyverbsObject):
    """
    An exported doorbell (struct ibv_peer_db_dmabuf). The caller owns fd
    and closes it (os.close()) once the peer imported it.
    """
    @property
    def fd(self):
        return self.attr.fd
    @property
    def flags(self):
        return self.attr.flags
    @property
    def offset(self):
        return self.attr.offset
    @property
    def length(self):
        return self.attr.length


cdef class PeerDesc(PyverbsObject):
    def __init__(self, kind=IBV_PEER_ANY_DEVICE, sysfs_path=None,
                 Context rdma_ctx=None):
        """
        The peer a probe asks about (struct ibv_peer_desc).
        :param kind: ibv_peer_kind
        :param sysfs_path: the peer's sysfs device, for IBV_PEER_SYSFS_DEVICE
        :param rdma_ctx: the peer RDMA device, for IBV_PEER_RDMA_DEVICE
        """
        super().__init__()
        memset(&self.desc, 0, sizeof(self.desc))
        self.desc.kind = kind
        if sysfs_path is not None:
            self.path = sysfs_path.encode()
            self.desc.sysfs_path = self.path
        if rdma_ctx is not None:
            self.ctx = rdma_ctx
            self.desc.rdma_ctx = rdma_ctx.context


cdef class PeerDBCaps(PyverbsObject):
    """Whether and how a peer can ring a QP (struct ibv_peer_db_caps)."""
    @property
    def comp_mask(self):
        return self.caps.comp_mask
    @property
    def method(self):
        return self.caps.method
    @property
    def methods(self):
        return self.caps.methods
    @property
    def reason(self):
        return self.caps.reason
    @property
    def backing(self):
        return self.caps.backing
    @property
    def flags(self):
        return self.caps.flags
    @property
    def max_ring_delay_us(self):
        return self.caps.max_ring_delay_us
    @property
    def proxy_spin_us(self):
        return self.caps.proxy_spin_us

    def __str__(self):
        return 'PeerDBCaps: {} ({}), methods {:#x}, flags {:#x}, ring noticed within {} us'.format(
            method_str(self.method), reason_str(self.reason), self.methods,
            self.flags, self.max_ring_delay_us)


def query_sq(QP qp not None):
    """ibv_peer_query_sq(): the QP's send queue and doorbell, as a PeerSQAttr."""
    attr = PeerSQAttr()
    rc = ibv_peer_query_sq(qp.qp, &(<PeerSQAttr>attr).attr, sizeof(ibv_peer_sq_attr))
    if rc:
        raise PyverbsRDMAError('Failed to query the send queue for a peer', rc)
    return attr


def query_cq(CQ cq not None):
    """ibv_peer_query_cq(): the CQ's ring, as a PeerCQAttr."""
    attr = PeerCQAttr()
    rc = ibv_peer_query_cq(cq.cq, &(<PeerCQAttr>attr).attr, sizeof(ibv_peer_cq_attr))
    if rc:
        raise PyverbsRDMAError('Failed to query the CQ for a peer', rc)
    return attr


def export_db(QP qp not None, flags=0):
    """ibv_peer_export_db(): the QP's doorbell as a dma-buf, a PeerDBDmabuf."""
    db = PeerDBDmabuf()
    rc = ibv_peer_export_db(qp.qp, flags, &(<PeerDBDmabuf>db).attr,
                            sizeof(ibv_peer_db_dmabuf))
    if rc:
        raise PyverbsRDMAError('Failed to export the doorbell', rc)
    return db


def probe_db(QP qp not None, PeerDesc peer=None):
    """ibv_peer_probe_db(): can the peer (any DMA device if None) ring qp?"""
    caps = PeerDBCaps()
    rc = ibv_peer_probe_db(qp.qp, &peer.desc if peer is not None else NULL,
                           &(<PeerDBCaps>caps).caps, sizeof(ibv_peer_db_caps))
    if rc:
        raise PyverbsRDMAError('Failed to probe the doorbell', rc)
    return caps


cdef class PeerQP(QP):
    def __init__(self, Context context not None, QPInitAttrEx init_attr not None,
                 PeerQPInitAttr peer_attr not None, QPAttr qp_attr=None):
        """
        A QP that a peer rings, created by ibv_peer_create_qp().
        :param context: Context object
        :param init_attr: QPInitAttrEx object (with a PD)
        :param peer_attr: PeerQPInitAttr object
        :param qp_attr: as for QP: move the QP towards RTS
        """
        cdef PD pd

        self.qp = ibv_peer_create_qp(context.context, &init_attr.attr,
                                     &peer_attr.attr, sizeof(ibv_peer_qp_init_attr))
        if self.qp == NULL:
            raise PyverbsRDMAErrno('Failed to create a peer QP')
        # the QP exists: the base class only takes its references
        self.context = context
        context.add_ref(self)
        if init_attr.pd is not None:
            pd = <PD>init_attr.pd
            pd.add_ref(self)
            self.pd = pd
        super().__init__(context, init_attr, qp_attr)

    def query_sq(self):
        return query_sq(self)

    def export_db(self, flags=0):
        return export_db(self, flags)

    def probe_db(self, PeerDesc peer=None):
        return probe_db(self, peer)
