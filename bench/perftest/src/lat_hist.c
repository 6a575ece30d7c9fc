/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * Latency percentiles in duration (-D) mode: see lat_hist.h.
 */

#include <math.h>
#include <string.h>

#include "lat_hist.h"

/* The lowest value of bucket i and its width, both in cycles. */
static void lat_hist_bucket(unsigned int i, double *low, double *width)
{
	unsigned int shift;

	if (i < LAT_HIST_SUB) {
		*low = i;
		*width = 1;
		return;
	}
	shift = i / LAT_HIST_SUB - 1;
	*low = ldexp(LAT_HIST_SUB + i % LAT_HIST_SUB, shift);
	*width = ldexp(1, shift);
}

double lat_hist_percentile(const struct lat_hist *h, double p)
{
	uint64_t rank, seen = 0;
	double low, width;
	unsigned int i;

	if (!h || !h->count)
		return NAN;
	/* the rank of the sample, 1-based, as the sorted -n report counts */
	rank = (uint64_t)ceil(p * h->count);
	if (rank < 1)
		rank = 1;
	for (i = 0; i < LAT_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank)
			break;
	}
	if (i == LAT_HIST_BUCKETS)	/* count and buckets disagree: the top */
		i = LAT_HIST_BUCKETS - 1;
	lat_hist_bucket(i, &low, &width);
	return width > 1 ? low + width / 2 : low;
}

void lat_hist_reset(struct lat_hist *h)
{
	if (h)
		memset(h, 0, sizeof(*h));
}
