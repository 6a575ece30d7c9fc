// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * p2paccel: the peer accelerator's command line (docs/accel-emulator.md).
 *
 *   p2paccel [-D DEV] info
 *   p2paccel [-D DEV] ring  [options] TARGET VALUE
 *   p2paccel [-D DEV] watch TARGET
 *
 * TARGET names a dma-buf: "fd:N" (inherited, e.g. `3<&...` from a wrapper),
 * "pid:P:N" (fd N of process P, taken with pidfd_getfd(2): needs ptrace
 * rights over P, as a debugger would) or "udmabuf" (a fresh one-page
 * udmabuf, to try the engines; its word is printed after the rings).
 *
 * ring options: -e store|dma (engine, default store), -o OFFSET (bytes,
 * default 0), -w 4|8 (width, default 4), -n COUNT (rings, default 1),
 * -d US (delay between rings). The rings run as one device program: a ring
 * and a delay in a loop.
 *
 * watch attaches TARGET and waits until its exporter revokes it, printing
 * the attachment's state; it exits 0 on the revocation.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/udmabuf.h>

#include "p2paccel.h"

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr,
		"usage: p2paccel [-D DEV] info\n"
		"       p2paccel [-D DEV] ring [-e store|dma] [-o OFF] [-w 4|8] [-n COUNT] [-d US] TARGET VALUE\n"
		"       p2paccel [-D DEV] watch TARGET\n"
		"TARGET: fd:N | pid:PID:N | udmabuf\n");
	exit(2);
}

static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "p2paccel: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static const char *const state_str[] = {
	[P2PACCEL_ATTACH_MAPPED] = "mapped",
	[P2PACCEL_ATTACH_INVALID] = "invalidated",
	[P2PACCEL_ATTACH_REVOKED] = "revoked",
};

/* A fresh one-page udmabuf; *map is its memory. */
static int make_udmabuf(volatile void **map)
{
	struct udmabuf_create c = { .size = 4096 };
	int memfd, dev, fd;

	memfd = memfd_create("p2paccel", MFD_ALLOW_SEALING);
	if (memfd < 0 || ftruncate(memfd, 4096) ||
	    fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK))
		fail("memfd: %s", strerror(errno));
	*map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (*map == MAP_FAILED)
		fail("mmap: %s", strerror(errno));
	dev = open("/dev/udmabuf", O_RDWR);
	if (dev < 0)
		fail("/dev/udmabuf: %s (modprobe udmabuf)", strerror(errno));
	c.memfd = memfd;
	fd = ioctl(dev, UDMABUF_CREATE, &c);
	if (fd < 0)
		fail("UDMABUF_CREATE: %s", strerror(errno));
	close(dev);
	close(memfd);
	return fd;
}

static int target_fd(const char *t, volatile void **map)
{
	int pid, n, pidfd, fd;

	*map = NULL;
	if (!strcmp(t, "udmabuf"))
		return make_udmabuf(map);
	if (sscanf(t, "fd:%d", &n) == 1)
		return n;
	if (sscanf(t, "pid:%d:%d", &pid, &n) == 2) {
		pidfd = syscall(SYS_pidfd_open, pid, 0);
		if (pidfd < 0)
			fail("pidfd_open %d: %s", pid, strerror(errno));
		fd = syscall(SYS_pidfd_getfd, pidfd, n, 0);
		if (fd < 0)
			fail("pidfd_getfd %d of %d: %s", n, pid, strerror(errno));
		close(pidfd);
		return fd;
	}
	usage();
}

static int cmd_info(struct p2paccel *acc)
{
	struct p2paccel_info i;
	int ret = p2paccel_query(acc, &i, sizeof(i));

	if (ret)
		fail("query: %s", strerror(ret));
	printf("pci %s\n", i.pci_name);
	printf("iommu %s\n", i.flags & P2PACCEL_DEV_IOMMU ? "yes" : "no");
	printf("engines store%s\n", i.flags & P2PACCEL_DEV_DMA_RING ? " dma" : "");
	printf("fault_inject %s\n", i.flags & P2PACCEL_DEV_FAULT_INJECT ? "yes" : "no");
	printf("dma_mask_bits %u\n", i.dma_mask_bits);
	printf("max_ops %u\nmax_loop_depth %u\nmax_steps %" PRIu64 "\n",
	       i.max_ops, i.max_loop_depth, i.max_steps);
	printf("max_delay_us %u\nmax_timeout_us %u\n", i.max_delay_us,
	       i.max_timeout_us);
	printf("max_attach %u\nmax_bufs %u\nmax_buf_bytes %" PRIu64 "\n",
	       i.max_attach, i.max_bufs, i.max_buf_bytes);
	return 0;
}

static int cmd_ring(struct p2paccel *acc, int argc, char **argv)
{
	uint32_t flags = P2PACCEL_RING_STORE, width = 4, count = 1, delay = 0;
	struct p2paccel_attach_attr a;
	struct p2paccel_reject rej;
	struct p2paccel_status st;
	struct p2paccel_prog *prog;
	uint64_t off = 0, value;
	volatile void *map;
	uint32_t att;
	int c, fd, ret;

	while ((c = getopt(argc, argv, "e:o:w:n:d:")) != -1) {
		switch (c) {
		case 'e':
			if (!strcmp(optarg, "dma"))
				flags = P2PACCEL_RING_DMA;
			else if (strcmp(optarg, "store"))
				usage();
			break;
		case 'o': off = strtoull(optarg, NULL, 0); break;
		case 'w': width = strtoul(optarg, NULL, 0); break;
		case 'n': count = strtoul(optarg, NULL, 0); break;
		case 'd': delay = strtoul(optarg, NULL, 0); break;
		default: usage();
		}
	}
	if (argc - optind != 2)
		usage();
	fd = target_fd(argv[optind], &map);
	value = strtoull(argv[optind + 1], NULL, 0);

	ret = p2paccel_attach(acc, fd, &att);
	if (ret)
		fail("attach: %s", strerror(ret));
	prog = p2paccel_prog_new();
	if (!prog)
		fail("out of memory");
	p2paccel_prog_ring(prog, att, off, width, value, flags);
	if (delay)
		p2paccel_prog_delay(prog, delay);
	if (count > 1)
		p2paccel_prog_loop(prog, 0, count);
	ret = p2paccel_submit(acc, prog, &rej, sizeof(rej));
	if (ret == EINVAL)
		fail("program refused at op %u: %s", rej.op,
		     p2paccel_reject_str(rej.reason));
	if (ret)
		fail("submit: %s", strerror(ret));
	ret = p2paccel_wait(acc, 3600 * 1000, &st, sizeof(st));
	if (ret)
		fail("wait: %s", strerror(ret));
	ret = p2paccel_query_attach(acc, att, &a, sizeof(a));
	printf("status %d (%s)\nrings %" PRIu64 "\n", st.status,
	       strerror(-st.status), st.rings);
	if (!ret)
		printf("state %s\ndma_addr %#" PRIx64 "\n",
		       state_str[a.state] ? state_str[a.state] : "?", a.dma_addr);
	if (map)
		printf("word %#" PRIx64 "\n", width == 8 ?
		       *(volatile uint64_t *)((volatile char *)map + off) :
		       *(volatile uint32_t *)((volatile char *)map + off));
	p2paccel_prog_free(acc, prog);
	return st.status ? 1 : 0;
}

static int cmd_watch(struct p2paccel *acc, int argc, char **argv)
{
	struct pollfd pfd = { .fd = p2paccel_fd(acc), .events = POLLPRI };
	struct p2paccel_attach_attr a;
	volatile void *map;
	uint64_t revoked;
	uint32_t att;
	int fd, ret;

	if (argc - optind != 1)
		usage();
	fd = target_fd(argv[optind], &map);
	ret = p2paccel_attach(acc, fd, &att);
	if (ret)
		fail("attach: %s", strerror(ret));
	ret = p2paccel_query_attach(acc, att, &a, sizeof(a));
	if (ret)
		fail("query: %s", strerror(ret));
	printf("attached as %u: %" PRIu64 " bytes, %s at %#" PRIx64 "\n", att,
	       a.size, state_str[a.state] ? state_str[a.state] : "?", a.dma_addr);
	fflush(stdout);
	for (;;) {
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			fail("poll: %s", strerror(errno));
		if (pfd.revents & (POLLERR | POLLHUP))
			fail("the accelerator was removed");
		ret = p2paccel_get_revoked(acc, &revoked);
		if (ret)
			fail("events: %s", strerror(ret));
		if (revoked & (1ULL << att))
			break;
	}
	printf("revoked\n");
	return 0;
}

int main(int argc, char **argv)
{
	const char *dev = NULL;
	struct p2paccel *acc;
	int ret;

	if (argc > 2 && !strcmp(argv[1], "-D")) {
		dev = argv[2];
		argc -= 2;
		argv += 2;
	}
	if (argc < 2)
		usage();
	acc = p2paccel_open(dev);
	if (!acc)
		fail("%s: %s", dev ? dev : "/dev/p2p_accel0", strerror(errno));
	optind = 2;
	if (!strcmp(argv[1], "info"))
		ret = cmd_info(acc);
	else if (!strcmp(argv[1], "ring"))
		ret = cmd_ring(acc, argc, argv);
	else if (!strcmp(argv[1], "watch"))
		ret = cmd_watch(acc, argc, argv);
	else
		usage();
	p2paccel_close(acc);
	return ret;
}
