// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Export an rxe doorbell page (a host-memory p2p mmap entry) through
 * rdma-core's ibv_cmd_export_dmabuf_fd(), with no rxe dma-buf op in the
 * kernel: the export works, a forged offset and a second process are
 * refused, the page cannot be mapped executable, and closing the context
 * revokes an importer that the p2p_mmap_test module attached. Then the
 * export goes to two importers a user can reach: queued in vivid
 * (vb2-vmalloc, which vmaps it without attaching) and PRIME-imported into
 * vgem. Neither may keep the exporting process's exit, or its SIGKILL,
 * from finishing. Last, the uverbs core's shadow doorbell
 * (UVERBS_OBJECT_SHADOW_DB) on rxe: bad mappings and exports are refused,
 * a peer's write lands in the page, and destroying the object or closing
 * the context revokes the importer. Prints TAP; exits non-zero on failure.
 *
 *   p2p_rxe_export         all of the above (vivid and vgem loaded)
 *   p2p_rxe_export hold    export, queue in vivid, import into vgem, also
 *                          map and export a shadow doorbell, print "held"
 *                          and wait to be killed (the script then deletes
 *                          the device or unloads rdma_rxe)
 *
 * The offset given to ibv_cmd_export_dmabuf_fd() is the mmap offset in
 * bytes, as for mlx5dv_devx_uar_export_dmabuf_fd(). The QP comes from our
 * libibverbs and rxe provider (db_qp.h); the export is rdma-core's generic
 * one on purpose, on any doorbell page and at forged offsets, which
 * ibv_peer_export_db() (vm/peer-db) never makes.
 */

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <drm/drm.h>
#include <linux/videodev2.h>
#include <rdma/ib_user_ioctl_cmds.h>
#include <rdma/rdma_user_ioctl.h>
#include "rxe_db.h"
#include "p2p_test_tap.h"

static long page;

/* Another process, its own context: the first one's offset is not its. */
static int child_export(uint64_t offset)
{
	struct vt_dev d2;
	int fd;

	vt_dev_open(&d2, "rxe0");
	fd = ibv_cmd_export_dmabuf_fd(d2.ctx, offset);
	if (fd >= 0)
		return 1;
	return errno == EINVAL ? 0 : 2;
}

/* A context, a doorbell QP and the export of its doorbell page. */
struct exporter {
	struct vt_dev d;
	struct ibv_cq *cq;
	struct db_qp q;
	int fd;
};

static void exporter_open(struct exporter *e)
{
	vt_dev_open(&e->d, "rxe0");
	e->cq = ibv_create_cq(e->d.ctx, 64, NULL, NULL, 0);
	if (!e->cq)
		die("create cq");
	db_qp_create(&e->d, &e->q, e->cq, DBQ_PLAIN);
	e->fd = ibv_cmd_export_dmabuf_fd(e->d.ctx, e->q.offset);
}

/* The doorbell page is never code: no PROT_EXEC mapping, no mprotect to it. */
static void check_no_exec(struct exporter *e)
{
	void *p;
	int ret;

	p = mmap(NULL, page, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_SHARED,
		 e->d.ctx->cmd_fd, e->q.offset);
	check(p == MAP_FAILED && errno == EPERM,
	      "doorbell page: mmap with PROT_EXEC refused: %s",
	      p == MAP_FAILED ? strerror(errno) : "mapped");
	if (p != MAP_FAILED)
		munmap(p, page);
	ret = mprotect(e->q.page, page, PROT_READ | PROT_WRITE | PROT_EXEC);
	check(ret && errno == EACCES,
	      "doorbell page: mprotect to PROT_EXEC refused: %s",
	      ret ? strerror(errno) : "allowed");
}

/* vivid's capture node (modprobe vivid n_devs=1 node_types=1). */
static int vivid_open(void)
{
	char path[300], name[64];
	struct dirent *de;
	int fd = -1;
	DIR *dir;

	dir = opendir("/sys/class/video4linux");
	while (dir && fd < 0 && (de = readdir(dir))) {
		FILE *f;

		snprintf(path, sizeof(path), "/sys/class/video4linux/%s/name",
			 de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(name, sizeof(name), f) && strstr(name, "vid-cap")) {
			snprintf(path, sizeof(path), "/dev/%s", de->d_name);
			fd = open(path, O_RDWR);
		}
		fclose(f);
	}
	if (dir)
		closedir(dir);
	return fd;
}

/*
 * Queue @dmabuf as vivid's capture buffer 0. vivid allocates with
 * vb2-vmalloc, whose QBUF of a dma-buf is a dma_buf_vmap() with no
 * attachment. Returns 0 or an errno.
 */
static int vivid_queue(int vfd, int dmabuf)
{
	struct v4l2_requestbuffers req = {
		.count = 1,
		.type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
		.memory = V4L2_MEMORY_DMABUF,
	};
	struct v4l2_format fmt = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	struct v4l2_buffer buf = {
		.type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
		.memory = V4L2_MEMORY_DMABUF,
	};
	int input = 1;	/* TV: scales down to 16x16, unlike the webcam */

	if (ioctl(vfd, VIDIOC_S_INPUT, &input))
		return errno;
	fmt.fmt.pix.width = 16;
	fmt.fmt.pix.height = 16;
	fmt.fmt.pix.pixelformat = V4L2_PIX_FMT_YUYV;
	if (ioctl(vfd, VIDIOC_S_FMT, &fmt))
		return errno;
	if (fmt.fmt.pix.sizeimage > page) {
		fprintf(stderr, "vivid frame of %u bytes\n", fmt.fmt.pix.sizeimage);
		return EFBIG;
	}
	if (ioctl(vfd, VIDIOC_REQBUFS, &req))
		return errno;
	buf.m.fd = dmabuf;
	buf.length = page;
	if (ioctl(vfd, VIDIOC_QBUF, &buf))
		return errno;
	return 0;
}

/* vgem's DRM node, told apart from the guest's display by its name. */
static int vgem_open(void)
{
	char path[32], name[16];
	int i, fd;

	for (i = 0; i < 8; i++) {
		struct drm_version v = { .name = name, .name_len = sizeof(name) - 1 };

		snprintf(path, sizeof(path), "/dev/dri/card%d", i);
		fd = open(path, O_RDWR);
		if (fd < 0)
			continue;
		memset(name, 0, sizeof(name));
		if (!ioctl(fd, DRM_IOCTL_VERSION, &v) && !strcmp(name, "vgem"))
			return fd;
		close(fd);
	}
	return -1;
}

/* PRIME import of @dmabuf into vgem: 0 and the handle, or an errno. */
static int vgem_import(int gfd, int dmabuf, uint32_t *handle)
{
	struct drm_prime_handle h = { .fd = dmabuf };

	if (ioctl(gfd, DRM_IOCTL_PRIME_FD_TO_HANDLE, &h))
		return errno;
	*handle = h.handle;
	return 0;
}

/* The two importers a user can reach, holding @dmabuf until released. */
struct importers {
	int vfd, gfd;
	uint32_t handle;
	int vret, gret;
};

static void importers_take(struct importers *im, int dmabuf, const char *what)
{
	im->vfd = vivid_open();
	im->gfd = vgem_open();
	im->vret = im->vfd < 0 ? ENODEV : vivid_queue(im->vfd, dmabuf);
	check(!im->vret, "%s: vivid (vb2-vmalloc) queued the doorbell export: %s",
	      what, strerror(im->vret));
	im->gret = im->gfd < 0 ? ENODEV : vgem_import(im->gfd, dmabuf,
						      &im->handle);
	/* Works or fails cleanly (the log scan checks "cleanly"). */
	check(im->gfd >= 0, "%s: vgem PRIME import: %s", what,
	      im->gret ? strerror(im->gret) : "imported");
}

static void importers_drop(struct importers *im)
{
	struct v4l2_requestbuffers req = {
		.type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
		.memory = V4L2_MEMORY_DMABUF,
	};
	struct drm_gem_close gc = { .handle = im->handle };

	/* REQBUFS 0 is vivid's vunmap: the late one, after the revoke. */
	if (im->vfd >= 0) {
		int ret = ioctl(im->vfd, VIDIOC_REQBUFS, &req);

		check(!ret, "vivid released its buffer late: %s",
		      ret ? strerror(errno) : "done");
		close(im->vfd);
	}
	if (im->gfd >= 0) {
		if (!im->gret)
			ioctl(im->gfd, DRM_IOCTL_GEM_CLOSE, &gc);
		close(im->gfd);
	}
}

static int send_fd(int sock, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {}, byte = 'f';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {}, byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &msg, 0) != 1)
		return -1;
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/*
 * The reported hang: another process holds the doorbell export in vivid
 * and vgem; the exporting process then exits (or is killed). Its context
 * teardown revokes the export and must finish while the importers still
 * hold it: they let go only afterwards.
 */
static void importers_vs_exit(int kill_it)
{
	const char *what = kill_it ? "SIGKILL" : "exit";
	struct importers im;
	int sv[2], fd, status = 0, i;
	pid_t pid, done = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		die("socketpair");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		struct exporter e;
		char go;

		close(sv[0]);
		exporter_open(&e);
		if (e.fd < 0 || send_fd(sv[1], e.fd))
			_exit(2);
		/* Exit with the context, QP and export all still open. */
		if (read(sv[1], &go, 1) != 1)
			_exit(3);
		_exit(0);
	}
	close(sv[1]);
	fd = recv_fd(sv[0]);
	check(fd >= 0, "%s: the exporter passed its doorbell export", what);
	if (fd < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return;
	}
	importers_take(&im, fd, what);

	if (kill_it)
		kill(pid, SIGKILL);
	else if (write(sv[0], "x", 1) != 1)
		die("tell the exporter to exit");
	for (i = 0; i < 600 && !done; i++) {
		done = waitpid(pid, &status, WNOHANG);
		if (!done)
			usleep(100000);
	}
	check(done == pid && (kill_it ? WIFSIGNALED(status) :
			      WIFEXITED(status) && !WEXITSTATUS(status)),
	      "%s: the exporter finished while vivid and vgem held its page (%#x)",
	      what, status);
	if (done != pid) {
		char path[64], line[200];
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/stack", pid);
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f))
			fprintf(stderr, "  %s", line);
		if (f)
			fclose(f);
	}
	importers_drop(&im);
	close(fd);
	close(sv[0]);
	if (done != pid)
		waitpid(pid, NULL, 0);
}

/* ---- the core's shadow doorbell ---- */

/*
 * Raw UVERBS_OBJECT_SHADOW_DB calls. libibverbs allocates shadows inside
 * ibv_peer_create_qp() for its CPU proxy and has no verb of its own for
 * them; these forge what it never sends (unknown handles, a second
 * destroy, bad mappings and exports of a destroyed shadow).
 */
static int shadow_ioctl(int cmd_fd, uint16_t method,
			struct ib_uverbs_attr *attrs, unsigned int n)
{
	struct {
		struct ib_uverbs_ioctl_hdr hdr;
		struct ib_uverbs_attr attrs[3];
	} buf = {
		.hdr = {
			.length = sizeof(buf.hdr) + n * sizeof(*attrs),
			.object_id = UVERBS_OBJECT_SHADOW_DB,
			.method_id = method,
			.num_attrs = n,
			/* uverbs checks it against the device's driver */
			.driver_id = RDMA_DRIVER_RXE,
		},
	};

	memcpy(buf.attrs, attrs, n * sizeof(*attrs));
	if (ioctl(cmd_fd, RDMA_VERBS_IOCTL, &buf))
		return errno;
	/* the new object's handle comes back in its attribute */
	memcpy(attrs, buf.attrs, n * sizeof(*attrs));
	return 0;
}

struct shadow {
	uint32_t handle;
	uint64_t offset, length;
};

static int shadow_alloc(int cmd_fd, struct shadow *sh)
{
	struct ib_uverbs_attr a[3] = {
		{ .attr_id = UVERBS_ATTR_SHADOW_DB_ALLOC_HANDLE },
		{ .attr_id = UVERBS_ATTR_SHADOW_DB_ALLOC_MMAP_OFFSET,
		  .len = sizeof(sh->offset), .data = (uintptr_t)&sh->offset },
		{ .attr_id = UVERBS_ATTR_SHADOW_DB_ALLOC_MMAP_LENGTH,
		  .len = sizeof(sh->length), .data = (uintptr_t)&sh->length },
	};
	int ret = shadow_ioctl(cmd_fd, UVERBS_METHOD_SHADOW_DB_ALLOC, a, 3);

	sh->handle = a[0].data;
	return ret;
}

static int shadow_destroy(int cmd_fd, uint32_t handle)
{
	struct ib_uverbs_attr a = {
		.attr_id = UVERBS_ATTR_SHADOW_DB_DESTROY_HANDLE, .data = handle,
	};

	return shadow_ioctl(cmd_fd, UVERBS_METHOD_SHADOW_DB_DESTROY, &a, 1);
}

static void t_shadow(void)
{
	struct shadow sh, sh2;
	struct vt_dev d;
	volatile uint32_t *p;
	void *q;
	int fd, err, ret;

	vt_dev_open(&d, "rxe0");
	err = shadow_alloc(d.ctx->cmd_fd, &sh);
	check(!err && sh.length == (uint64_t)page && !(sh.offset % page),
	      "shadow: allocated, one page at offset %#llx: %s",
	      (unsigned long long)sh.offset, strerror(err));
	if (err) {
		vt_dev_close(&d);
		return;
	}

	q = mmap(NULL, page, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_SHARED,
		 d.ctx->cmd_fd, sh.offset);
	check(q == MAP_FAILED && errno == EPERM,
	      "shadow: mmap with PROT_EXEC refused: %s",
	      q == MAP_FAILED ? strerror(errno) : "mapped");
	q = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED,
		 d.ctx->cmd_fd, sh.offset);
	check(q == MAP_FAILED && errno == EINVAL,
	      "shadow: mmap of two pages refused: %s",
	      q == MAP_FAILED ? strerror(errno) : "mapped");
	q = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE,
		 d.ctx->cmd_fd, sh.offset);
	check(q == MAP_FAILED && errno == EINVAL,
	      "shadow: private mmap refused: %s",
	      q == MAP_FAILED ? strerror(errno) : "mapped");
	p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED,
		 d.ctx->cmd_fd, sh.offset);
	check(p != MAP_FAILED && !p[0], "shadow: mapped, zeroed: %s",
	      p == MAP_FAILED ? strerror(errno) : "ok");
	if (p == MAP_FAILED)
		die("mmap the shadow");

	fd = ibv_cmd_export_dmabuf_fd(d.ctx, sh.offset);
	check(fd >= 0 && lseek(fd, 0, SEEK_END) == page,
	      "shadow: exported as a one-page dma-buf: %s",
	      fd < 0 ? strerror(errno) : "ok");
	ret = ibv_cmd_export_dmabuf_fd(d.ctx, sh.offset + 8);
	check(ret < 0 && errno == EINVAL, "shadow: forged offset refused: %s",
	      ret < 0 ? strerror(errno) : "exported");
	if (fd < 0)
		die("export the shadow");

	err = p2p_test_ctl("attach %d", fd);
	check(!err, "shadow: kernel importer attached (write-only): %s",
	      strerror(err));
	err = p2p_test_ctl("write %d %d %x", IMP_FOREIGN, 16, 0x5eed);
	check(!err && p[4] == 0x5eed,
	      "shadow: the importer's write is in the page (%s, %#x)",
	      strerror(err), p[4]);

	err = shadow_destroy(d.ctx->cmd_fd, sh.handle + 1000);
	check(err == ENOENT, "shadow: destroying an unknown handle: %s",
	      strerror(err));
	err = shadow_destroy(d.ctx->cmd_fd, sh.handle);
	check(!err, "shadow: destroyed: %s", strerror(err));
	err = p2p_test_ctl("revoked %d shadow-destroy", IMP_FOREIGN);
	check(!err, "shadow: destroying it revoked the importer: %s",
	      strerror(err));
	err = shadow_destroy(d.ctx->cmd_fd, sh.handle);
	check(err == ENOENT, "shadow: a second destroy: %s", strerror(err));
	ret = ibv_cmd_export_dmabuf_fd(d.ctx, sh.offset);
	check(ret < 0 && errno == EINVAL,
	      "shadow: no new export after the destroy: %s",
	      ret < 0 ? strerror(errno) : "exported");
	q = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED,
		 d.ctx->cmd_fd, sh.offset);
	check(q == MAP_FAILED && errno == EINVAL,
	      "shadow: no new mapping after the destroy: %s",
	      q == MAP_FAILED ? strerror(errno) : "mapped");
	/* the old mapping keeps its page until munmap, as a doorbell's does */
	check(p[4] == 0x5eed, "shadow: the old mapping still reads the page");
	munmap((void *)p, page);
	close(fd);

	/* a live shadow, exported and imported, goes with its context */
	err = shadow_alloc(d.ctx->cmd_fd, &sh2);
	fd = err ? -1 : ibv_cmd_export_dmabuf_fd(d.ctx, sh2.offset);
	err = fd < 0 ? errno : p2p_test_ctl("attach %d", fd);
	check(!err, "shadow: a second one exported and attached: %s",
	      strerror(err));
	vt_dev_close(&d);
	err = p2p_test_ctl("revoked %d shadow-context-close", IMP_FOREIGN);
	check(!err, "shadow: closing the context revoked the importer: %s",
	      strerror(err));
	if (fd >= 0)
		close(fd);
}

static int hold(void)
{
	struct importers im;
	struct exporter e;
	struct shadow sh;
	void *p;
	int err, fd;

	exporter_open(&e);
	if (e.fd < 0)
		die("export: %s", strerror(errno));
	importers_take(&im, e.fd, "hold");
	/* a live shadow, mapped and exported, for the device's removal */
	err = shadow_alloc(e.d.ctx->cmd_fd, &sh);
	if (err)
		die("shadow: %s", strerror(err));
	p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED,
		 e.d.ctx->cmd_fd, sh.offset);
	fd = ibv_cmd_export_dmabuf_fd(e.d.ctx, sh.offset);
	if (p == MAP_FAILED || fd < 0)
		die("shadow: map or export: %s", strerror(errno));
	printf("%s\n", im.vret ? "vivid failed" : "held");
	fflush(stdout);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	struct exporter e;
	int err, status;
	pid_t pid;

	page = sysconf(_SC_PAGESIZE);
	if (argc > 1 && !strcmp(argv[1], "hold"))
		return hold();

	printf("TAP version 13\n");
	exporter_open(&e);
	check(e.fd >= 0 && lseek(e.fd, 0, SEEK_END) == page,
	      "export the doorbell page at offset %#llx: %d",
	      (unsigned long long)e.q.offset, e.fd);
	err = ibv_cmd_export_dmabuf_fd(e.d.ctx, e.q.offset + 8);
	check(err < 0 && errno == EINVAL, "forged offset refused: %d %s", err,
	      strerror(errno));
	check_no_exec(&e);

	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid)
		_exit(child_export(e.q.offset));
	waitpid(pid, &status, 0);
	check(WIFEXITED(status) && !WEXITSTATUS(status),
	      "a second process cannot export the first one's page (%#x)",
	      status);
	if (e.fd < 0)
		return 1;

	err = p2p_test_ctl("attach %d", e.fd);
	check(!err, "kernel importer attached, mapped and vmapped: %s",
	      strerror(err));

	/*
	 * The doorbell page belongs to the context and outlives the QP; the
	 * QP and CQ go first because their mmaps hold the uverbs file.
	 */
	err = db_qp_destroy(&e.q);
	if (err)
		die("destroy qp: %s", strerror(err));
	ibv_destroy_cq(e.cq);
	vt_dev_close(&e.d);
	close(e.fd);
	err = p2p_test_ctl("revoked %d rxe-context-close", IMP_FOREIGN);
	check(!err, "closing the context revoked the importer: %s",
	      strerror(err));

	importers_vs_exit(0);
	importers_vs_exit(1);
	t_shadow();

	printf("1..%d\n", tests);
	return failed ? 1 : 0;
}
