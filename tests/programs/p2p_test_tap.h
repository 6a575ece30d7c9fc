/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * Shared by the userspace halves of the p2p_mmap_test KTAP module: TAP
 * output, and the module's debugfs control file, through which a program
 * asks the module to import an export or to check a revocation.
 */
#ifndef P2P_TEST_TAP_H
#define P2P_TEST_TAP_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define P2P_TEST_CTL "/sys/kernel/debug/p2p_mmap_test/ctl"
/* the module's importer of another driver's export ("attach", "write") */
#define IMP_FOREIGN 4

static int tests, failed;

/* One TAP result line; the caller prints the plan ("1..N") at the end. */
static inline void __attribute__((format(printf, 2, 3)))
check(int ok, const char *fmt, ...)
{
	va_list ap;

	tests++;
	if (!ok)
		failed++;
	printf("%sok %d - ", ok ? "" : "not ", tests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/*
 * Write one command to the test module's control file. Returns 0 or the
 * positive errno of the write (the module's verdict); a missing control
 * file (module not loaded) ends the program.
 */
static inline int __attribute__((format(printf, 1, 2)))
p2p_test_ctl(const char *fmt, ...)
{
	char buf[64];
	va_list ap;
	int fd, ret = 0;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fd = open(P2P_TEST_CTL, O_WRONLY);
	if (fd < 0) {
		fprintf(stderr, "open %s: %s\n", P2P_TEST_CTL, strerror(errno));
		exit(2);
	}
	if (write(fd, buf, strlen(buf)) < 0)
		ret = errno;
	close(fd);
	return ret;
}

#endif /* P2P_TEST_TAP_H */
