// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Export an rxe doorbell page (a host-memory p2p mmap entry) through
 * rdma-core's ibv_cmd_export_dmabuf_fd(), with no rxe dma-buf op in the
 * kernel: the export works, a forged offset and a second process are
 * refused, and closing the context revokes an importer that the
 * p2p_mmap_test module attached. Prints TAP; exits non-zero on failure.
 *
 * The offset given to ibv_cmd_export_dmabuf_fd() is the mmap offset in
 * bytes, as for mlx5dv_devx_uar_export_dmabuf_fd().
 */

#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/wait.h>
#include "rxe_db.h"
#include "p2p_test_tap.h"

#define IMP_FOREIGN 2

/* Another process, its own context: the first one's offset is not its. */
static int child_export(uint64_t offset)
{
	struct db_dev d2;
	int fd;

	db_dev_open(&d2, "rxe0");
	fd = ibv_cmd_export_dmabuf_fd(d2.ctx, offset);
	if (fd >= 0)
		return 1;
	return errno == EINVAL ? 0 : 2;
}

int main(void)
{
	long page = sysconf(_SC_PAGESIZE);
	struct ibv_cq *cq;
	struct db_dev d;
	struct raw_qp q;
	int err, fd, status;
	pid_t pid;

	printf("TAP version 13\n");
	db_dev_open(&d, "rxe0");
	cq = ibv_create_cq(d.ctx, 64, NULL, NULL, 0);
	if (!cq)
		die("create cq");
	err = raw_qp_create(&d, &q, cq, RXE_CREATE_QP_DOORBELL, 16,
			    sizeof(struct rxe_create_qp_resp));
	if (err)
		die("create doorbell qp: %s", strerror(err));

	fd = ibv_cmd_export_dmabuf_fd(d.ctx, q.db_offset);
	check(fd >= 0 && lseek(fd, 0, SEEK_END) == page,
	      "export the doorbell page at offset %#llx: %d",
	      (unsigned long long)q.db_offset, fd);
	err = ibv_cmd_export_dmabuf_fd(d.ctx, q.db_offset + 8);
	check(err < 0 && errno == EINVAL, "forged offset refused: %d %s", err,
	      strerror(errno));

	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid)
		_exit(child_export(q.db_offset));
	waitpid(pid, &status, 0);
	check(WIFEXITED(status) && !WEXITSTATUS(status),
	      "a second process cannot export the first one's page (%#x)",
	      status);
	if (fd < 0)
		return 1;

	err = p2p_test_ctl("attach %d", fd);
	check(!err, "kernel importer attached, mapped and vmapped: %s",
	      strerror(err));

	/*
	 * The doorbell page belongs to the context and outlives the QP; the
	 * QP and CQ go first because their mmaps hold the uverbs file.
	 */
	err = raw_qp_destroy(&q);
	if (err)
		die("destroy qp: %s", strerror(err));
	ibv_destroy_cq(cq);
	db_dev_close(&d);
	close(fd);
	err = p2p_test_ctl("revoked %d rxe-context-close", IMP_FOREIGN);
	check(!err, "closing the context revoked the importer: %s",
	      strerror(err));

	printf("1..%d\n", tests);
	return failed ? 1 : 0;
}
