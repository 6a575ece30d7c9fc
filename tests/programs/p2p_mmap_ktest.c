// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Userspace half of the p2p_mmap_test KTAP module: creates contexts on the
 * module's fake device, mmaps and exports its entries through
 * UVERBS_METHOD_DMABUF_ALLOC (raw uverbs: the fake device has no rdma-core
 * provider) and tells the module, through debugfs, which import, vmap
 * holder or revocation to check. Prints TAP; exits non-zero if anything
 * failed. The guest must have the module's two ivshmem functions (BAR).
 *
 *   p2p_mmap_ktest            all scenarios except module unload
 *   p2p_mmap_ktest hold       export and import entries, leave a vmap
 *                             holder, print "held", then wait to be killed
 *                             (module unload test)
 *   p2p_mmap_ktest rxe DEV PROG
 *                             rxe as the importer: export every p2p entry,
 *                             import each into the module, and run PROG
 *                             (rxe_dmabuf_mr) with the fds: it registers
 *                             MRs on DEV over them, moves and revokes two;
 *                             then check its writes through our mappings
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
#include "rxe_dmabuf_mr.h"

#define DBG "/sys/kernel/debug/p2p_mmap_test/"
#define MAGIC(kind) (0x5a5a0000u + (kind))
enum { HOST, VMALLOC, BAR, BAR_WC, PLAIN, NR_KINDS };

static long page;
static void die(const char *what)
{
	perror(what);
	exit(2);
}

struct ctx {
	int fd;
	int async_fd;
	unsigned long long off[NR_KINDS];
	unsigned long long bar_phys;
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
	if (!f || fscanf(f, "%llu %llu %llu %llu %llu %llu", &c->off[HOST],
			 &c->off[VMALLOC], &c->off[BAR], &c->off[BAR_WC],
			 &c->off[PLAIN], &c->bar_phys) != 6)
		die("read offsets (are the ivshmem functions there?)");
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

/* A doorbell page is never code: no PROT_EXEC, and mprotect cannot add it. */
static void check_no_exec(struct ctx *c, int kind, size_t len)
{
	void *p;
	int ret;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_SHARED,
		 c->fd, c->off[kind]);
	check(p == MAP_FAILED && errno == EPERM,
	      "kind %d: mmap with PROT_EXEC refused: %s", kind,
	      p == MAP_FAILED ? strerror(errno) : "mapped");
	if (p != MAP_FAILED)
		munmap(p, len);
	p = mmap(NULL, len, PROT_READ, MAP_SHARED, c->fd, c->off[kind]);
	if (p == MAP_FAILED)
		die("mmap entry read-only");
	ret = mprotect(p, len, PROT_READ | PROT_EXEC);
	check(ret && errno == EACCES,
	      "kind %d: mprotect to PROT_EXEC refused: %s", kind,
	      ret ? strerror(errno) : "allowed");
	munmap(p, len);
}

/*
 * The CPU caching the kernel gave the BAR mapping, from the x86 PAT memtype
 * list: "PAT: [mem 0x...-0x...] write-combining". NULL if none is listed.
 */
static const char *pat_type(unsigned long long phys, char *buf, size_t len)
{
	char line[200], want[64];
	const char *type = NULL;
	FILE *f;

	f = fopen("/sys/kernel/debug/x86/pat_memtype_list", "r");
	if (!f)
		return NULL;
	snprintf(want, sizeof(want), "[mem 0x%016llx-0x%016llx]", phys,
		 phys + page);
	while (fgets(line, sizeof(line), f)) {
		char *at = strstr(line, want);

		if (at) {
			snprintf(buf, len, "%s", at + strlen(want) + 1);
			buf[strcspn(buf, "\n")] = 0;
			type = buf;
		}
	}
	fclose(f);
	return type;
}

/* The BAR entries: UC and WC mappings, as the memtype list shows them. */
static void check_bar_caching(struct ctx *c)
{
	const char *t;
	char buf[64];

	t = pat_type(c->bar_phys, buf, sizeof(buf));
	check(t && !strcmp(t, "uncached-minus"), "BAR UC entry maps %s",
	      t ?: "(not listed)");
	t = pat_type(c->bar_phys + page, buf, sizeof(buf));
	check(t && !strcmp(t, "write-combining"), "BAR WC entry maps %s",
	      t ?: "(not listed)");
}

/* Contexts, exports, imports; revocation by removal, disassociate, close. */
static void scenario_one_context(void)
{
	volatile uint32_t *host, *vmal, *bar, *barwc;
	int dh, dv, db, dw, dh2, ret;
	struct ctx c;

	ctx_open(&c);
	host = map_entry(&c, HOST, 2 * page);
	vmal = map_entry(&c, VMALLOC, page);
	bar = map_entry(&c, BAR, page);
	barwc = map_entry(&c, BAR_WC, page);
	host[0] = MAGIC(HOST);
	vmal[0] = MAGIC(VMALLOC);
	bar[0] = MAGIC(BAR);
	barwc[0] = MAGIC(BAR_WC);
	__sync_synchronize();	/* drain the WC buffer before the kernel reads */
	check_bar_caching(&c);
	check_no_exec(&c, HOST, 2 * page);
	check_no_exec(&c, BAR, page);

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
	db = export(&c, c.off[BAR]);
	check(db >= 0 && lseek(db, 0, SEEK_END) == page,
	      "export BAR UC entry: %d", db);
	dw = export(&c, c.off[BAR_WC]);
	check(dw >= 0, "export BAR WC entry: %d", dw);
	if (dh < 0 || dv < 0 || db < 0 || dw < 0)
		return;

	ctl_check("direction %d %d", dv, VMALLOC);
	ctl_check("direction %d %d", dw, BAR_WC);
	ctl_check("import %d %d", dh, HOST);
	check(host[1] == ~MAGIC(HOST), "kernel vmap write seen through mmap");
	ctl_check("import %d %d", dv, VMALLOC);
	ctl_check("import %d %d", db, BAR);
	check(bar[1] == ~MAGIC(BAR), "kernel BAR write seen through UC mmap");
	ctl_check("import %d %d", dw, BAR_WC);
	ctl_check("remap %d", HOST);
	ctl_check("remap %d", BAR);

	/*
	 * Entry removal (QP destroy) revokes the exports and does not wait
	 * for a vmap holder; the export keeps the pages until its fd goes.
	 */
	ctl_check("hold %d %d", dv, VMALLOC);
	ctl_check("remove %d", VMALLOC);
	ctl_check("remove %d", BAR_WC);
	ctl_check("late %d", VMALLOC);
	ctl_check("revoked %d entry-remove", VMALLOC);
	ctl_check("revoked %d entry-remove", BAR_WC);
	ret = export(&c, c.off[VMALLOC]);
	check(ret == -EINVAL, "removed entry cannot be exported: %d", ret);
	munmap((void *)vmal, page);
	munmap((void *)barwc, page);
	close(dv);
	close(dw);
	ctl_check("freed %d", VMALLOC);
	ctl_check("freed %d", BAR_WC);

	/* Disassociate revokes exports, vmap holder or not, and zaps mmaps. */
	ctl_check("hold %d %d", dh, HOST);
	ctl_check("disassociate");
	ctl_check("late %d", HOST);
	ctl_check("revoked %d disassociate", HOST);
	ctl_check("revoked %d disassociate", BAR);
	check(host[0] == 0, "mmap zapped by disassociate: %#x", host[0]);
	check(bar[0] == 0, "BAR mmap zapped by disassociate: %#x", bar[0]);
	close(dh);
	close(db);

	/* The entry is still valid: it can be exported again. */
	dh2 = export(&c, c.off[HOST]);
	check(dh2 >= 0, "export again after disassociate: %d", dh2);
	if (dh2 < 0)
		return;
	host[0] = MAGIC(HOST);
	/* The pages still hold the magic; the zapped VMA no longer maps them. */
	ctl_check("import %d %d", dh2, HOST);
	munmap((void *)host, 2 * page);
	munmap((void *)bar, page);

	/*
	 * Closing the context revokes, and the driver frees the pages while
	 * a vmap holder still maps them: they stay allocated until its vunmap.
	 */
	ctl_check("hold %d %d", dh2, HOST);
	close(dh2);
	ctx_close(&c);
	ctl_check("late %d", HOST);
	ctl_check("revoked %d context-close", HOST);
	ctl_check("freed %d", HOST);
	ctl_check("freed %d", BAR);
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
		ctl_check("hold %d %d", fd, HOST);
		map_entry(&child, BAR, page)[0] = MAGIC(BAR);
		fd = export(&child, child.off[BAR]);
		check(fd >= 0, "child: export its BAR entry: %d", fd);
		ctl_check("import %d %d", fd, BAR);
		ok = failed > failed_before ? 'n' : 'y';
		if (write(pipefd[1], &ok, 1) != 1)
			_exit(2);
		pause();
		_exit(0);
	}
	close(pipefd[1]);
	/* The child printed its 6 results with its copy of the counters. */
	tests += 6;
	if (read(pipefd[0], &ok, 1) != 1 || ok != 'y')
		failed++;
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	check(WIFSIGNALED(status), "child killed");
	ctl_check("late %d", HOST);
	ctl_check("revoked %d sigkill", HOST);
	ctl_check("revoked %d sigkill", BAR);
	ctl_check("freed %d", HOST);
	ctl_check("freed %d", BAR);
	ctx_close(&parent);
}

/* Device unregister revokes; the module registers the device again. */
static void scenario_unregister(void)
{
	volatile uint32_t *host, *bar;
	struct ctx c;
	int dh, db;

	ctx_open(&c);
	host = map_entry(&c, HOST, 2 * page);
	host[0] = MAGIC(HOST);
	bar = map_entry(&c, BAR, page);
	bar[0] = MAGIC(BAR);
	dh = export(&c, c.off[HOST]);
	check(dh >= 0, "export host entry: %d", dh);
	db = export(&c, c.off[BAR]);
	check(db >= 0, "export BAR entry: %d", db);
	if (dh < 0 || db < 0)
		return;
	ctl_check("import %d %d", dh, HOST);
	ctl_check("hold %d %d", dh, HOST);
	ctl_check("import %d %d", db, BAR);
	ctl_check("unregister");
	ctl_check("late %d", HOST);
	ctl_check("revoked %d unregister", HOST);
	ctl_check("revoked %d unregister", BAR);
	ctl_check("freed %d", HOST);
	ctl_check("freed %d", BAR);
	check(host[0] == 0, "mmap zapped by unregister: %#x", host[0]);
	check(bar[0] == 0, "BAR mmap zapped by unregister: %#x", bar[0]);
	munmap((void *)host, 2 * page);
	munmap((void *)bar, page);
	close(dh);
	close(db);
	ctx_close(&c);
}

/*
 * rxe as the importer of every kind of export: host pages (read and write),
 * vmalloc pages (write only), a BAR page UC (read and write: I/O memory)
 * and WC (write only). rxe_dmabuf_mr moves (invalidates) and then revokes
 * (removes) the vmalloc and the BAR UC entry while its MRs are registered.
 */
static void scenario_rxe(const char *dev, const char *prog)
{
	static const size_t npages[4] = { 2, 1, 1, 1 };
	static const char *const trigger[4] = {
		"context-close", "rxe-remove", "rxe-remove", "context-close",
	};
	volatile uint32_t *map[4];
	char arg[4][32], *argv[8];
	int fd[4], k, status;
	struct ctx c;
	uint32_t v;
	pid_t pid;

	ctx_open(&c);
	for (k = HOST; k <= BAR_WC; k++) {
		map[k] = map_entry(&c, k, npages[k] * page);
		map[k][0] = MAGIC(k);
	}
	__sync_synchronize();	/* drain the WC buffer before the kernel reads */
	for (k = HOST; k <= BAR_WC; k++) {
		fd[k] = export(&c, c.off[k]);
		check(fd[k] >= 0, "kind %d: export for rxe: %d", k, fd[k]);
		if (fd[k] < 0)
			return;
		/* the module's own importer: the move and the checks use it */
		ctl_check("import %d %d", fd[k], k);
		/* a hardware importer's dma-buf MRs: the direction of access */
		if (k <= VMALLOC)
			ctl_check("umem %d %d", fd[k], k);
		snprintf(arg[k], sizeof(arg[k]), "%d:%d", k, fd[k]);
	}

	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		for (k = HOST; k <= BAR_WC; k++)
			fcntl(fd[k], F_SETFD, 0);	/* inherited by PROG */
		argv[0] = (char *)prog;
		argv[1] = (char *)dev;
		argv[2] = "p2p";
		for (k = HOST; k <= BAR_WC; k++)
			argv[3 + k] = arg[k];
		argv[7] = NULL;
		execv(prog, argv);
		perror(prog);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		die("waitpid");
	check(WIFEXITED(status) && !WEXITSTATUS(status),
	      "%s p2p passed (status %#x)", prog, status);

	/* Its writes landed; the ones after revocation did not. */
	for (k = HOST; k <= BAR_WC; k++) {
		v = map[k][RXE_DMABUF_MR_OFFSET / 4];
		check(v == RXE_DMABUF_MR_PATTERN(k),
		      "kind %d: rxe's write seen through our mapping: %#x", k, v);
	}

	/* The removed entries: revoked, and freed once unmapped and closed. */
	ctl_check("revoked %d %s", VMALLOC, trigger[VMALLOC]);
	ctl_check("revoked %d %s", BAR, trigger[BAR]);
	for (k = HOST; k <= BAR_WC; k++) {
		munmap((void *)map[k], npages[k] * page);
		close(fd[k]);
	}
	ctl_check("freed %d", VMALLOC);
	ctl_check("freed %d", BAR);
	ctx_close(&c);
	ctl_check("revoked %d %s", HOST, trigger[HOST]);
	ctl_check("revoked %d %s", BAR_WC, trigger[BAR_WC]);
	ctl_check("freed %d", HOST);
	ctl_check("freed %d", BAR_WC);
}

static int hold(void)
{
	struct ctx c;
	int dh, db, ret;

	ctx_open(&c);
	map_entry(&c, HOST, 2 * page)[0] = MAGIC(HOST);
	map_entry(&c, BAR, page)[0] = MAGIC(BAR);
	dh = export(&c, c.off[HOST]);
	db = export(&c, c.off[BAR]);
	if (dh < 0 || db < 0)
		return 1;
	ret = p2p_test_ctl("import %d %d", dh, HOST) ?:
	      p2p_test_ctl("hold %d %d", dh, HOST) ?:
	      p2p_test_ctl("import %d %d", db, BAR);
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
	if (argc == 4 && !strcmp(argv[1], "rxe")) {
		scenario_rxe(argv[2], argv[3]);
		printf("1..%d\n", tests);
		return failed ? 1 : 0;
	}
	scenario_one_context();
	scenario_two_processes();
	scenario_unregister();
	printf("1..%d\n", tests);
	return failed ? 1 : 0;
}
