// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Userspace half of the p2p_mmap_test KTAP module: creates contexts on the
 * module's fake device, mmaps and exports its entries through
 * UVERBS_METHOD_DMABUF_ALLOC (raw uverbs: the fake device has no rdma-core
 * provider) and tells the module, through debugfs, which import or
 * revocation to check. Prints TAP; exits non-zero if anything failed.
 *
 *   p2p_mmap_ktest            all scenarios except module unload
 *   p2p_mmap_ktest hold       export and import one entry, print "held",
 *                             then wait to be killed (module unload test)
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <rdma/ib_user_verbs.h>
#include <rdma/ib_user_ioctl_cmds.h>
#include <rdma/rdma_user_ioctl.h>
#include "p2p_test_tap.h"

#define DBG "/sys/kernel/debug/p2p_mmap_test/"
#define MAGIC(kind) (0x5a5a0000u + (kind))
enum { HOST, VMALLOC, PLAIN };

static long page;
static void die(const char *what)
{
	perror(what);
	exit(2);
}

struct ctx {
	int fd;
	int async_fd;
	unsigned long long off[3];
};

static int open_uverbs(void)
{
	char path[300], name[64];
	struct dirent *d;
	DIR *dir;
	int fd = -1;

	dir = opendir("/sys/class/infiniband_verbs");
	if (!dir)
		die("opendir infiniband_verbs");
	while ((d = readdir(dir))) {
		FILE *f;

		snprintf(path, sizeof(path), "/sys/class/infiniband_verbs/%s/ibdev",
			 d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(name, sizeof(name), f) && !strncmp(name, "p2ptest", 7)) {
			snprintf(path, sizeof(path), "/dev/infiniband/%s", d->d_name);
			fd = open(path, O_RDWR | O_CLOEXEC);
		}
		fclose(f);
		if (fd >= 0)
			break;
	}
	closedir(dir);
	if (fd < 0)
		die("open p2ptest uverbs device");
	return fd;
}

static void ctx_open(struct ctx *c)
{
	struct {
		struct ib_uverbs_cmd_hdr hdr;
		struct ib_uverbs_get_context cmd;
	} req = {};
	struct ib_uverbs_get_context_resp resp = {};
	FILE *f;

	c->fd = open_uverbs();
	req.hdr.command = IB_USER_VERBS_CMD_GET_CONTEXT;
	req.hdr.in_words = sizeof(req) / 4;
	req.hdr.out_words = sizeof(resp) / 4;
	req.cmd.response = (uintptr_t)&resp;
	if (write(c->fd, &req, sizeof(req)) != sizeof(req))
		die("GET_CONTEXT");
	c->async_fd = resp.async_fd;

	f = fopen(DBG "offsets", "r");
	if (!f || fscanf(f, "%llu %llu %llu", &c->off[HOST], &c->off[VMALLOC],
			 &c->off[PLAIN]) != 3)
		die("read offsets");
	fclose(f);
}

static void ctx_close(struct ctx *c)
{
	close(c->async_fd);
	close(c->fd);
}

/* What ibv_cmd_export_dmabuf_fd() sends: returns a dma-buf fd or -errno. */
static int export(struct ctx *c, unsigned long long offset)
{
	struct {
		struct ib_uverbs_ioctl_hdr hdr;
		struct ib_uverbs_attr attrs[2];
	} req = {};

	req.hdr.length = sizeof(req);
	req.hdr.object_id = UVERBS_OBJECT_DMABUF;
	req.hdr.method_id = UVERBS_METHOD_DMABUF_ALLOC;
	req.hdr.num_attrs = 2;
	req.attrs[0].attr_id = UVERBS_ATTR_ALLOC_DMABUF_HANDLE;
	req.attrs[1].attr_id = UVERBS_ATTR_ALLOC_DMABUF_PGOFF;
	req.attrs[1].len = sizeof(uint64_t);
	req.attrs[1].data = offset;
	if (ioctl(c->fd, RDMA_VERBS_IOCTL, &req))
		return -errno;
	return req.attrs[0].data;
}


static void ctl_check(const char *fmt, ...)
{
	char buf[64];
	va_list ap;
	int ret;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ret = -p2p_test_ctl("%s", buf);
	check(!ret, "kernel: %s (%s)", buf, ret ? strerror(-ret) : "passed");
}

static volatile uint32_t *map_entry(struct ctx *c, int kind, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd,
		       c->off[kind]);

	if (p == MAP_FAILED)
		die("mmap entry");
	return p;
}

/* Contexts, exports, imports; revocation by removal, disassociate, close. */
static void scenario_one_context(void)
{
	volatile uint32_t *host, *vmal;
	int dh, dv, dh2, ret;
	struct ctx c;

	ctx_open(&c);
	host = map_entry(&c, HOST, 2 * page);
	vmal = map_entry(&c, VMALLOC, page);
	host[0] = MAGIC(HOST);
	vmal[0] = MAGIC(VMALLOC);

	ret = export(&c, c.off[HOST] + 1);
	check(ret == -EINVAL, "unaligned offset refused: %d", ret);
	ret = export(&c, c.off[HOST] + page);
	check(ret == -EINVAL, "offset inside an entry refused: %d", ret);
	ret = export(&c, 1ULL << 40);
	check(ret == -EINVAL, "forged offset refused: %d", ret);
	ret = export(&c, (unsigned long long)-page);
	check(ret == -EINVAL, "negative offset refused: %d", ret);
	ret = export(&c, c.off[PLAIN]);
	check(ret == -EOPNOTSUPP, "non-p2p entry refused: %d", ret);

	dh = export(&c, c.off[HOST]);
	check(dh >= 0, "export host entry: %d", dh);
	dv = export(&c, c.off[VMALLOC]);
	check(dv >= 0, "export vmalloc entry: %d", dv);
	if (dh < 0 || dv < 0)
		return;

	ctl_check("direction %d", dv);
	ctl_check("import %d %d", dh, HOST);
	check(host[1] == ~MAGIC(HOST), "kernel vmap write seen through mmap");
	ctl_check("import %d %d", dv, VMALLOC);
	ctl_check("remap %d", HOST);

	/* Entry removal (QP destroy) revokes the vmalloc export. */
	ctl_check("remove %d", VMALLOC);
	ctl_check("revoked %d entry-remove", VMALLOC);
	ret = export(&c, c.off[VMALLOC]);
	check(ret == -EINVAL, "removed entry cannot be exported: %d", ret);
	munmap((void *)vmal, page);
	close(dv);
	ctl_check("freed %d", VMALLOC);

	/* Disassociate revokes exports and zaps the mmap. */
	ctl_check("disassociate");
	ctl_check("revoked %d disassociate", HOST);
	check(host[0] == 0, "mmap zapped by disassociate: %#x", host[0]);
	close(dh);

	/* The entry is still valid: it can be exported again. */
	dh2 = export(&c, c.off[HOST]);
	check(dh2 >= 0, "export again after disassociate: %d", dh2);
	if (dh2 < 0)
		return;
	host[0] = MAGIC(HOST);
	/* The pages still hold the magic; the zapped VMA no longer maps them. */
	ctl_check("import %d %d", dh2, HOST);
	munmap((void *)host, 2 * page);

	/* Closing the context revokes, then the driver frees the pages. */
	close(dh2);
	ctx_close(&c);
	ctl_check("revoked %d context-close", HOST);
	ctl_check("freed %d", HOST);
}

/* Another process's context; SIGKILL of the exporting process. */
static void scenario_two_processes(void)
{
	int pipefd[2], status, failed_before = failed;
	volatile uint32_t *host;
	struct ctx parent;
	char ok;
	pid_t pid;

	ctx_open(&parent);
	if (pipe(pipefd))
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		struct ctx child;
		int ret, fd;

		close(pipefd[0]);
		ctx_open(&child);
		ret = export(&child, parent.off[HOST]);
		check(ret == -EINVAL, "child: the parent's entry is not its own: %d",
		      ret);
		host = map_entry(&child, HOST, 2 * page);
		host[0] = MAGIC(HOST);
		fd = export(&child, child.off[HOST]);
		check(fd >= 0, "child: export its own entry: %d", fd);
		ctl_check("import %d %d", fd, HOST);
		ok = failed > failed_before ? 'n' : 'y';
		if (write(pipefd[1], &ok, 1) != 1)
			_exit(2);
		pause();
		_exit(0);
	}
	close(pipefd[1]);
	/* The child printed its 3 results with its copy of the counters. */
	tests += 3;
	if (read(pipefd[0], &ok, 1) != 1 || ok != 'y')
		failed++;
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	check(WIFSIGNALED(status), "child killed");
	ctl_check("revoked %d sigkill", HOST);
	ctl_check("freed %d", HOST);
	ctx_close(&parent);
}

/* Device unregister revokes; the module registers the device again. */
static void scenario_unregister(void)
{
	volatile uint32_t *host;
	struct ctx c;
	int dh;

	ctx_open(&c);
	host = map_entry(&c, HOST, 2 * page);
	host[0] = MAGIC(HOST);
	dh = export(&c, c.off[HOST]);
	check(dh >= 0, "export host entry: %d", dh);
	if (dh < 0)
		return;
	ctl_check("import %d %d", dh, HOST);
	ctl_check("unregister");
	ctl_check("revoked %d unregister", HOST);
	ctl_check("freed %d", HOST);
	check(host[0] == 0, "mmap zapped by unregister: %#x", host[0]);
	munmap((void *)host, 2 * page);
	close(dh);
	ctx_close(&c);
}

static int hold(void)
{
	volatile uint32_t *host;
	struct ctx c;
	int dh, ret;

	ctx_open(&c);
	host = map_entry(&c, HOST, 2 * page);
	host[0] = MAGIC(HOST);
	dh = export(&c, c.off[HOST]);
	if (dh < 0)
		return 1;
	ret = p2p_test_ctl("import %d %d", dh, HOST);
	printf("%s\n", ret ? "import failed" : "held");
	fflush(stdout);
	if (ret)
		return 1;
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	page = sysconf(_SC_PAGESIZE);
	if (argc > 1 && !strcmp(argv[1], "hold"))
		return hold();

	printf("TAP version 13\n");
	scenario_one_context();
	scenario_two_processes();
	scenario_unregister();
	printf("1..%d\n", tests);
	return failed ? 1 : 0;
}
