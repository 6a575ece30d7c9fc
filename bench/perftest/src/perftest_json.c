/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * The --out_json report (see perftest_json.h for its layout).
 *
 * perftest used to print its JSON with dprintf() format strings, next to
 * the text, one file per result line: values were never escaped, an -a run
 * kept only its last message size, inf/nan made the file unparsable and
 * several header fields were missing. Here the report is built as a small
 * tree of members and written whole, so it is valid by construction.
 */

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "perftest_json.h"
#include "perftest_parameters.h"
#include "perftest_resources.h"
#include "perftest_counters.h"

static void pj_reserve(struct pj_obj *o, size_t more)
{
	size_t cap;
	char *buf;

	if (o->failed || o->len + more + 1 <= o->cap)
		return;
	cap = o->cap ? o->cap : 256;
	while (cap < o->len + more + 1)
		cap *= 2;
	buf = realloc(o->buf, cap);
	if (!buf) {
		o->failed = 1;
		return;
	}
	o->buf = buf;
	o->cap = cap;
}

static void pj_raw(struct pj_obj *o, const char *s, size_t n)
{
	pj_reserve(o, n);
	if (o->failed)
		return;
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void pj_printf(struct pj_obj *o, const char *fmt, ...)
{
	char small[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		o->failed = 1;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		pj_raw(o, small, n);
		return;
	}
	pj_reserve(o, n);
	if (o->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(o->buf + o->len, n + 1, fmt, ap);
	va_end(ap);
	o->len += n;
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void pj_quote(struct pj_obj *o, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	pj_raw(o, "\"", 1);
	for (; *p; p++) {
		if (*p == '"' || *p == '\\') {
			pj_raw(o, "\\", 1);
			pj_raw(o, (const char *)p, 1);
		} else if (*p < 0x20) {
			pj_printf(o, "\\u%04x", *p);
		} else {
			pj_raw(o, (const char *)p, 1);
		}
	}
	pj_raw(o, "\"", 1);
}

static void pj_sep(struct pj_obj *o)
{
	if (o->members++)
		pj_raw(o, o->is_array ? ", " : ",\n", 2);
}

static void pj_key(struct pj_obj *o, const char *key)
{
	pj_sep(o);
	pj_quote(o, key);
	pj_raw(o, ": ", 2);
}

void pj_init(struct pj_obj *o)
{
	memset(o, 0, sizeof(*o));
}

void pj_init_array(struct pj_obj *o)
{
	pj_init(o);
	o->is_array = 1;
}

void pj_free(struct pj_obj *o)
{
	free(o->buf);
	pj_init(o);
}

void pj_str(struct pj_obj *o, const char *key, const char *val)
{
	pj_key(o, key);
	pj_quote(o, val);
}

void pj_int(struct pj_obj *o, const char *key, long long val)
{
	pj_key(o, key);
	pj_printf(o, "%lld", val);
}

void pj_uint(struct pj_obj *o, const char *key, unsigned long long val)
{
	pj_key(o, key);
	pj_printf(o, "%llu", val);
}

static void pj_number(struct pj_obj *o, double val, int prec)
{
	if (isfinite(val))
		pj_printf(o, "%.*f", prec, val);
	else
		pj_raw(o, "null", 4);
}

void pj_num(struct pj_obj *o, const char *key, double val, int prec)
{
	pj_key(o, key);
	pj_number(o, val, prec);
}

/* The finished object or array as text, with its brackets. */
static void pj_render(struct pj_obj *to, const struct pj_obj *o)
{
	pj_raw(to, o->is_array ? "[" : "{\n", o->is_array ? 1 : 2);
	if (o->len)
		pj_raw(to, o->buf, o->len);
	pj_raw(to, o->is_array ? "]" : "\n}", o->is_array ? 1 : 2);
	if (o->failed)
		to->failed = 1;
}

void pj_member(struct pj_obj *o, const char *key, const struct pj_obj *member)
{
	pj_key(o, key);
	pj_render(o, member);
}

void pj_elem_num(struct pj_obj *arr, double val, int prec)
{
	pj_sep(arr);
	pj_number(arr, val, prec);
}

void pj_elem(struct pj_obj *arr, const struct pj_obj *elem)
{
	pj_sep(arr);
	pj_render(arr, elem);
}

/* What the report has gathered so far; perftest reports from one thread. */
static struct {
	int		started;
	int		open_failed;
	struct pj_obj	local;		/* address objects, one per QP */
	struct pj_obj	remote;
	struct pj_obj	all;		/* every result line */
	struct pj_obj	last;		/* the last result line */
} report;

static void report_start(void)
{
	if (report.started)
		return;
	pj_init_array(&report.local);
	pj_init_array(&report.remote);
	pj_init_array(&report.all);
	pj_init(&report.last);
	report.started = 1;
}

void perftest_json_address(struct perftest_parameters *user_param,
			   const struct pingpong_dest *dest, int lid, int is_mgid)
{
	const uint8_t *g = dest->gid.raw;
	struct pj_obj a;
	char gid[40];

	/*
	 * user_param is the connection's copy of the parameters
	 * (create_comm_struct()), which has no out_json: keep the line
	 * whether or not a report is written.
	 */
	report_start();
	pj_init(&a);
	pj_int(&a, "LID", lid);
	pj_int(&a, "QPN", dest->qpn);
	pj_int(&a, "PSN", dest->psn);
	if (user_param->verb == READ)
		pj_int(&a, "OUT", dest->out_reads);
	if (user_param->verb == READ || user_param->verb == WRITE) {
		pj_uint(&a, "RKey", dest->rkey);
		/* a string: 64-bit addresses do not survive a double */
		snprintf(gid, sizeof(gid), "%#016llx", dest->vaddr);
		pj_str(&a, "VAddr", gid);
	}
	if (user_param->use_xrc || user_param->connection_type == DC)
		pj_uint(&a, "SRQn", dest->srqn);
	if (is_mgid >= 0) {
		snprintf(gid, sizeof(gid),
			 "%02x%02x:%02x%02x:%02x%02x:%02x%02x:%02x%02x:%02x%02x:%02x%02x:%02x%02x",
			 g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7],
			 g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
		pj_str(&a, is_mgid ? "MGID" : "GID", gid);
	}
	pj_elem(user_param->side == LOCAL ? &report.local : &report.remote, &a);
	pj_free(&a);
}

static void report_write(struct perftest_parameters *user_param)
{
	struct pj_obj doc, info, conn;
	size_t off = 0;
	int fd;

	pj_init(&doc);
	pj_init(&info);
	pj_init(&conn);
	perftest_json_test_info(&info, user_param);
	pj_member(&conn, "local", &report.local);
	pj_member(&conn, "remote", &report.remote);
	pj_member(&doc, "test_info", &info);
	pj_member(&doc, "connection", &conn);
	pj_member(&doc, "results", &report.last);
	pj_member(&doc, "all_results", &report.all);
	if (doc.failed) {
		fprintf(stderr, " Out of memory for the JSON report %s\n",
			user_param->out_json_file_name);
		goto out;
	}

	fd = open(user_param->out_json_file_name,
		  O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, S_IRUSR | S_IWUSR);
	if (fd < 0) {
		if (!report.open_failed)
			fprintf(stderr, " Couldn't open the JSON report %s: %s\n",
				user_param->out_json_file_name, strerror(errno));
		report.open_failed = 1;
		goto out;
	}
	/* the document is the object's text with its braces */
	pj_free(&info);
	pj_render(&info, &doc);
	pj_raw(&info, "\n", 1);
	while (!info.failed && off < info.len) {
		ssize_t n = write(fd, info.buf + off, info.len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, " Couldn't write the JSON report %s: %s\n",
				user_param->out_json_file_name, strerror(errno));
			break;
		}
		off += n;
	}
	close(fd);
out:
	pj_free(&doc);
	pj_free(&info);
	pj_free(&conn);
}

void perftest_json_result(struct perftest_parameters *user_param, struct pj_obj *row)
{
	if (!user_param->out_json) {
		pj_free(row);
		return;
	}
	report_start();
	if (user_param->counter_ctx) {
		struct pj_obj c;

		pj_init(&c);
		counters_to_json(user_param->counter_ctx, &c);
		pj_member(row, "counters", &c);
		pj_free(&c);
	}
	pj_elem(&report.all, row);
	pj_free(&report.last);
	report.last = *row;
	pj_init(row);
	report_write(user_param);
}
