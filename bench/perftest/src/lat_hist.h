/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * Latency percentiles in duration (-D) mode.
 *
 * With -n the latency tests keep one timestamp per iteration and sort the
 * differences. A -D run has no iteration count, so it cannot keep them all:
 * instead each round trip (the time from one post to the next, exactly
 * what -n measures) goes into a log-linear histogram of cycle counts.
 * Values below 2^LAT_HIST_SUB_BITS cycles are counted exactly; above, every
 * power-of-two range is split into 2^LAT_HIST_SUB_BITS buckets, so that a
 * percentile read back lies within 1/128 (0.8 %) of the sample it stands
 * for. The histogram has a fixed size (58 KiB) whatever the run length,
 * and recording a sample costs a few instructions and no allocation.
 */

#ifndef LAT_HIST_H
#define LAT_HIST_H

#include <stdint.h>

#include "get_clock.h"

#define LAT_HIST_SUB_BITS	7
#define LAT_HIST_SUB		(1u << LAT_HIST_SUB_BITS)
/* one exact range, then one range per remaining bit of a 64-bit value */
#define LAT_HIST_BUCKETS	((64 - LAT_HIST_SUB_BITS + 1) * LAT_HIST_SUB)

struct lat_hist {
	uint64_t	count;
	cycles_t	last_post;	/* 0: no post in the sample window yet */
	uint64_t	bucket[LAT_HIST_BUCKETS];
};

static inline unsigned int lat_hist_index(uint64_t v)
{
	unsigned int shift;

	if (v < LAT_HIST_SUB)
		return v;
	/* v >> shift keeps the top LAT_HIST_SUB_BITS + 1 bits: SUB..2*SUB-1 */
	shift = 63 - __builtin_clzll(v) - LAT_HIST_SUB_BITS;
	return (shift + 1) * LAT_HIST_SUB + (unsigned int)(v >> shift) - LAT_HIST_SUB;
}

/*
 * Called at every post of a latency loop in duration mode: counts the round
 * trip since the previous post when both lie in the sample window
 * (SAMPLE_STATE), as -n mode counts tposted[i + 1] - tposted[i].
 */
static inline void lat_hist_post(struct lat_hist *h, int sampling)
{
	cycles_t now;

	if (!sampling) {
		h->last_post = 0;
		return;
	}
	now = get_cycles();
	if (h->last_post && now > h->last_post) {
		h->bucket[lat_hist_index(now - h->last_post)]++;
		h->count++;
	}
	h->last_post = now;
}

/*
 * The sample at fraction p (0 < p <= 1) of the sorted samples, in cycles
 * (the middle of its bucket); NAN when there is no histogram or no sample
 * (a loop that does not record, such as the raw Ethernet burst test).
 */
double lat_hist_percentile(const struct lat_hist *h, double p);

void lat_hist_reset(struct lat_hist *h);

#endif /* LAT_HIST_H */
