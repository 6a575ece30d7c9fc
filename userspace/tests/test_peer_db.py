# SPDX-License-Identifier: (GPL-2.0 OR Linux-OpenIB)
# Copyright (c) 2026 rdma-p2p-doorbell developers
"""
The peer doorbell verbs (<infiniband/peer_db.h>, pyverbs.peer_db): probe,
query, export, staged sends that a peer's ring releases. On a provider or
kernel without peer doorbells, staged QPs ring through libibverbs' CPU
proxy and the tests use it; what neither offers is skipped.
"""

import ctypes
import errno
import mmap
import os
import struct
import time
import unittest

from pyverbs.libibverbs_enums import ibv_qp_type, ibv_qp_init_attr_mask, \
    ibv_wc_status
from pyverbs.pyverbs_error import PyverbsRDMAError
from pyverbs.qp import QPCap, QPInitAttrEx
from pyverbs.wr import SGE, SendWR, RecvWR
import pyverbs.peer_db as p

from tests.base import RCResources, RDMATestCase
import tests.utils as u


STAGED = 8


class PeerRCResources(RCResources):
    """RC resources whose QP is created by ibv_peer_create_qp()."""
    def __init__(self, dev_name, ib_port, gid_index, peer_flags=0, **kwargs):
        self.peer_flags = peer_flags
        super().__init__(dev_name, ib_port, gid_index, **kwargs)

    def create_qps(self):
        cap = QPCap(max_send_wr=2 * STAGED, max_recv_wr=self.num_msgs,
                    max_send_sge=1, max_recv_sge=1)
        init_attr = QPInitAttrEx(qp_type=ibv_qp_type.IBV_QPT_RC, scq=self.cq,
                                 rcq=self.cq, pd=self.pd, cap=cap,
                                 comp_mask=ibv_qp_init_attr_mask.IBV_QP_INIT_ATTR_PD)
        try:
            qp = p.PeerQP(self.ctx, init_attr,
                          p.PeerQPInitAttr(flags=self.peer_flags),
                          self.create_qp_attr())
        except PyverbsRDMAError as ex:
            if ex.error_code == errno.EOPNOTSUPP:
                raise unittest.SkipTest('Peer QPs with flags {:#x} are not supported'
                                        .format(self.peer_flags))
            raise ex
        self.qps.append(qp)
        self.qps_num.append(qp.qp_num)
        self.psns.append(0)


class PeerDoorbellTest(RDMATestCase):
    def setUp(self):
        super().setUp()
        self.iters = STAGED

    def test_probe_plain_qp(self):
        """A QP not created for peers: the probe says no, and why."""
        self.create_players(RCResources)
        caps = p.probe_db(self.client.qp)
        self.assertEqual(caps.method, p.IBV_PEER_DB_METHOD_NONE)
        self.assertIn(caps.reason, [p.IBV_PEER_DB_QP_NOT_FOR_PEER,
                                    p.IBV_PEER_DB_KERNEL_TOO_OLD,
                                    p.IBV_PEER_DB_NO_PROVIDER_SUPPORT])
        self.assertTrue(p.reason_str(caps.reason))
        self.assertEqual(p.method_str(p.IBV_PEER_DB_METHOD_PROXY), 'CPU proxy')
        with self.assertRaises(PyverbsRDMAError) as ex:
            p.export_db(self.client.qp)
        self.assertIn(ex.exception.error_code, [errno.EINVAL, errno.EOPNOTSUPP])

    def test_query_cq(self):
        """The CQ's ring as a peer sees it."""
        self.create_players(RCResources)
        try:
            attr = p.query_cq(self.client.cq)
        except PyverbsRDMAError as ex:
            if ex.error_code == errno.EOPNOTSUPP:
                raise unittest.SkipTest('ibv_peer_query_cq is not supported')
            raise ex
        self.assertGreaterEqual(attr.cqe_cnt, self.client.num_msgs)
        self.assertEqual(attr.cqe_cnt & (attr.cqe_cnt - 1), 0)
        self.assertNotEqual(attr.prod_index, 0)

    @staticmethod
    def _ring_mapped(sq, prod):
        """Ring by a store into the doorbell as mapped in this process."""
        ctypes.c_uint32.from_address(sq.db).value = prod

    def _stage_and_ring(self, ring):
        """Stage sends on the client, check they wait, ring, complete."""
        for _ in range(STAGED):
            sge = SGE(self.server.mr.buf, self.server.msg_size, self.server.mr.lkey)
            self.server.qp.post_recv(RecvWR(num_sge=1, sg=[sge]))
        for i in range(STAGED):
            sge = SGE(self.client.mr.buf, self.client.msg_size, self.client.mr.lkey)
            self.client.qp.post_send(SendWR(wr_id=i, num_sge=1, sg=[sge]))
        time.sleep(0.2)
        nc, _ = self.client.cq.poll(1)
        self.assertEqual(nc, 0, 'a staged send went before the ring')
        sq = self.client.qp.query_sq()
        prod = ctypes.c_uint32.from_address(sq.prod_index).value
        ring(sq, prod)
        wcs = u.poll_cq(self.client.cq, STAGED)
        self.assertEqual(len(wcs), STAGED)
        u.poll_cq(self.server.cq, STAGED)

    def test_staged_cpu_ring(self):
        """
        Staged sends released by a store of the producer index into the
        doorbell as mapped here: the direct path, or the proxy's shadow.
        """
        self.create_players(PeerRCResources,
                            peer_flags=p.IBV_PEER_QP_STAGED | p.IBV_PEER_QP_DEDICATED_DB)
        caps = self.client.qp.probe_db()
        if caps.method not in [p.IBV_PEER_DB_METHOD_DMABUF, p.IBV_PEER_DB_METHOD_PROXY]:
            raise unittest.SkipTest('No peer can ring: {}'.format(p.reason_str(caps.reason)))
        sq = self.client.qp.query_sq()
        self.assertTrue(sq.flags & p.IBV_PEER_SQ_STAGED)
        self.assertEqual(sq.db_width, 4)
        self.assertEqual(sq.db_value, p.IBV_PEER_DB_VALUE_PROD_INDEX)
        self.assertEqual(bool(sq.flags & p.IBV_PEER_SQ_PROXY),
                         caps.method == p.IBV_PEER_DB_METHOD_PROXY)
        db = self.client.qp.export_db(p.IBV_PEER_EXPORT_EXCLUSIVE)
        self.assertGreaterEqual(db.fd, 0)
        self.assertTrue(db.flags & p.IBV_PEER_DMABUF_DEDICATED)
        os.close(db.fd)
        self._stage_and_ring(self._ring_mapped)

    def test_proxy(self):
        """
        The CPU proxy, forced: the peer (here the CPU) rings the shadow
        doorbell, through an mmap of the exported dma-buf where it is a heap
        page, or through the proxy's own mapping where it is the kernel's
        (a uverbs export, write-only for peers and revoked with the QP, which
        the CPU cannot mmap).
        """
        self.create_players(PeerRCResources,
                            peer_flags=p.IBV_PEER_QP_STAGED | p.IBV_PEER_QP_PROXY)
        caps = self.client.qp.probe_db()
        self.assertEqual(caps.method, p.IBV_PEER_DB_METHOD_PROXY)
        self.assertEqual(caps.reason, p.IBV_PEER_DB_OK)
        self.assertTrue(caps.comp_mask & p.IBV_PEER_DB_CAPS_MASK_PROXY_COST)
        self.assertGreater(caps.max_ring_delay_us, 0)
        db = self.client.qp.export_db()
        self.assertTrue(db.flags & p.IBV_PEER_DMABUF_DEDICATED)
        if db.flags & p.IBV_PEER_DMABUF_REVOCABLE:
            self.assertTrue(db.flags & p.IBV_PEER_DMABUF_WRITE_ONLY)
            os.close(db.fd)
            self._stage_and_ring(self._ring_mapped)
            return
        m = mmap.mmap(db.fd, db.length)
        os.close(db.fd)

        def ring(sq, prod):
            struct.pack_into('<I', m, db.offset, prod)
        try:
            self._stage_and_ring(ring)
        finally:
            m.close()
