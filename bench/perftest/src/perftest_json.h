/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * The --out_json report: one valid JSON document (RFC 8259) that carries
 * every field of the text report.
 *
 *   {
 *     "test_info":   { the header block, key by key },
 *     "connection":  { "local": [ one object per QP ], "remote": [ ... ] },
 *     "results":     { the last result line },
 *     "all_results": [ every result line, in the order they printed ]
 *   }
 *
 * "test_info" and "results" keep the keys perftest always wrote, so that
 * existing readers keep working; "all_results" holds every message size of
 * an -a run, where the old file kept only the last one. Numbers that are
 * not finite (perftest prints inf or nan when its clock calibration fails)
 * are written as null.
 *
 * The whole file is rewritten after every result line, so it is a complete
 * document whenever the test stops.
 */

#ifndef PERFTEST_JSON_H
#define PERFTEST_JSON_H

#include <stddef.h>

struct perftest_parameters;
struct pingpong_dest;

/*
 * One JSON object or array under construction; members are kept in the
 * order they were added. All helpers are no-ops once an allocation failed
 * (failed is then set and the object is left out of the report).
 */
struct pj_obj {
	char	*buf;
	size_t	len;
	size_t	cap;
	int	members;
	int	is_array;
	int	failed;
};

void pj_init(struct pj_obj *o);
void pj_init_array(struct pj_obj *o);
void pj_free(struct pj_obj *o);
void pj_str(struct pj_obj *o, const char *key, const char *val);
void pj_int(struct pj_obj *o, const char *key, long long val);
void pj_uint(struct pj_obj *o, const char *key, unsigned long long val);
/* a number with prec digits after the point; null when not finite */
void pj_num(struct pj_obj *o, const char *key, double val, int prec);
/* a member whose value is the finished object or array member */
void pj_member(struct pj_obj *o, const char *key, const struct pj_obj *member);
/* an element of an array begun with pj_init_array() */
void pj_elem_num(struct pj_obj *arr, double val, int prec);
void pj_elem(struct pj_obj *arr, const struct pj_obj *elem);

/*
 * The header block of ctx_print_test_info() as "test_info" (defined in
 * perftest_parameters.c, beside the text it mirrors).
 */
void perftest_json_test_info(struct pj_obj *o, struct perftest_parameters *user_param);

/* One "local address" / "remote address" line of the text report. */
void perftest_json_address(struct perftest_parameters *user_param,
			   const struct pingpong_dest *dest, int lid, int is_mgid);

/*
 * One result line: adds the counters of --report-counters, appends the
 * row to the report and rewrites --out_json_file. Takes the row's memory.
 */
void perftest_json_result(struct perftest_parameters *user_param, struct pj_obj *row);

#endif /* PERFTEST_JSON_H */
