// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * The rxe doorbell engine's figures (issue 8), driven by hand like the
 * tests (see rxe_db.h). A benchmark, not a test: it prints JSON and fails
 * only when a WQE does not complete.
 *
 *   rxe_db_bench DEV lat N PATHS [TRACEFILE]
 *	one 4-byte RDMA WRITE per iteration, posted, rung and polled to
 *	completion (loopback), for each path in PATHS (comma separated), in
 *	alternating blocks so that every path sees the same machine:
 *	  page	a doorbell QP rung through its page (the provider's protocol:
 *		kick only when the slot says RXE_DB_NEED_WAKEUP);
 *	  kick	a QP created the old way, kicked with the POST_SEND system
 *		call (what an unmodified application does; the only path on
 *		Debian's modules);
 *	  peer	a peer doorbell QP rung through its page, never kicked.
 *	With TRACEFILE, each iteration's ring and completion times
 *	(CLOCK_MONOTONIC ns) go there, for bench/rxe-doorbell-breakdown.
 *   rxe_db_bench DEV peer-sleep N SCAN_US
 *	a peer slot rung (never kicked) while the engine sleeps, N times at
 *	random phases of the peer scan: the time to the completion.
 *   rxe_db_bench DEV idle NQP SECONDS [peer]
 *	NQP doorbell QPs rung once and left idle: the engine threads' CPU
 *	time over SECONDS (from their schedstat) and the whole guest's busy
 *	time (/proc/stat), then the first ring after the idle time against
 *	the rings right after it (NQP 0: the busy time alone, the baseline).
 *   rxe_db_bench DEV scale N NIDLE [peer]
 *	one active QP's page ring latency with NIDLE other doorbell QPs
 *	present and idle.
 */
#include <dirent.h>

#include "rxe_db_bench.h"

static const char *dev_name;

enum path { PATH_PAGE, PATH_KICK, PATH_PEER, NR_PATHS };

static const char *const path_names[NR_PATHS] = {
	[PATH_PAGE] = "page", [PATH_KICK] = "kick", [PATH_PEER] = "peer",
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median, quartiles and extremes of n samples (sorts them). */
static void print_stats(const char *name, double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	printf("\"%s\": {\"n\": %d, \"median_us\": %.2f, \"p10_us\": %.2f, \"p25_us\": %.2f, "
	       "\"p75_us\": %.2f, \"p90_us\": %.2f, \"min_us\": %.2f, \"max_us\": %.2f}",
	       name, n, v[n / 2], v[n / 10], v[n / 4], v[3 * n / 4], v[9 * n / 10], v[0],
	       v[n - 1]);
}

static int create_qp(struct db_dev *d, struct raw_qp *q, struct ibv_cq *cq, int flags)
{
	int err = raw_qp_create(d, q, cq, flags, 16, flags < 0 ?
				offsetof(struct rxe_create_qp_resp, db_offset) :
				sizeof(struct rxe_create_qp_resp));

	if (!err)
		raw_qp_connect(q);
	return err;
}

/* One WRITE posted, rung the path's way and polled to its completion. */
static void one_write(struct raw_qp *q, enum path p, uint32_t seq)
{
	struct db_dev *d = q->d;
	size_t src = 4096 + (size_t)q->qpn % 64 * 64, dst = 65536 + (size_t)q->qpn % 64 * 64;

	memcpy(d->v.buf + src, &seq, sizeof(seq));
	raw_qp_post_write(q, seq, src, dst, sizeof(seq));
	switch (p) {
	case PATH_PAGE:
		raw_qp_ring(q);
		break;
	case PATH_KICK:
		raw_qp_kick(q);
		break;
	case PATH_PEER:
		raw_qp_ring_value(q, q->prod);
		break;
	default:
		break;
	}
	if (wait_cq(q->cq, 1, 10000, NULL) != 1)
		die("qp %u (%s): no completion for WQE %u", q->qpn, path_names[p], seq);
}

static void t_lat(int n, const char *paths, const char *tracefile)
{
	static const int flags[NR_PATHS] = {
		[PATH_PAGE] = RXE_CREATE_QP_DOORBELL,
		[PATH_KICK] = -1,
		[PATH_PEER] = RXE_CREATE_QP_DOORBELL_PEER,
	};
	struct raw_qp qps[NR_PATHS];
	int use[NR_PATHS] = { 0 }, np = 0, order[NR_PATHS];
	double *lat[NR_PATHS];
	uint64_t *tring = NULL, *tdone = NULL;
	FILE *tf = NULL;
	struct ibv_cq *cq;
	struct db_dev d;
	int i, j, k, round, blk = n / 10;
	char *list = strdup(paths), *tok, *save;

	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		for (j = 0; j < NR_PATHS; j++)
			if (!strcmp(tok, path_names[j]))
				break;
		if (j == NR_PATHS)
			die("unknown path %s", tok);
		if (!use[j])
			order[np++] = j;
		use[j] = 1;
	}
	free(list);
	if (blk < 1)
		die("lat: N must be at least 10");
	if (tracefile) {
		tf = fopen(tracefile, "w");
		if (!tf)
			die("open %s: %s", tracefile, strerror(errno));
		tring = calloc(blk, sizeof(*tring));
		tdone = calloc(blk, sizeof(*tdone));
	}

	db_dev_open(&d, dev_name);
	cq = ibv_create_cq(d.v.ctx, 64, NULL, NULL, 0);
	if (!cq)
		die("cq");
	for (k = 0; k < np; k++) {
		j = order[k];
		if (create_qp(&d, &qps[j], cq, flags[j]))
			die("create the %s QP: %s", path_names[j], strerror(errno));
		lat[j] = calloc(blk * 10, sizeof(double));
	}

	/* alternate blocks, each after a warm-up, so all paths see the same machine */
	for (round = 0; round < 10; round++) {
		for (k = 0; k < np; k++) {
			j = order[k];
			for (i = 0; i < 10; i++)
				one_write(&qps[j], j, i);
			for (i = 0; i < blk; i++) {
				uint64_t t0 = now_ns();

				one_write(&qps[j], j, i);
				lat[j][round * blk + i] = (now_ns() - t0) / 1e3;
				if (tf) {
					tring[i] = t0;
					tdone[i] = now_ns();
				}
			}
			for (i = 0; tf && i < blk; i++)
				fprintf(tf, "%s %d %llu %llu\n", path_names[j], round * blk + i,
					(unsigned long long)tring[i], (unsigned long long)tdone[i]);
		}
	}

	printf("{\"iterations\": %d", blk * 10);
	for (k = 0; k < np; k++) {
		j = order[k];
		printf(", ");
		print_stats(path_names[j], lat[j], blk * 10);
	}
	printf("}\n");
	if (tf)
		fclose(tf);
	for (k = 0; k < np; k++)
		raw_qp_destroy(&qps[order[k]]);
	ibv_destroy_cq(cq);
	db_dev_close(&d);
}

/* Wait until the slot says the engine has let go of it (at most 10 s). */
static void wait_disarmed(struct raw_qp *q)
{
	double end = now_us() + 10e6;

	while (!(raw_qp_slot_flags(q) & RXE_DB_NEED_WAKEUP)) {
		if (now_us() > end)
			die("qp %u: the engine never let go of the slot", q->qpn);
		usleep(1000);
	}
}

static void t_peer_sleep(int n, int scan_us)
{
	struct raw_qp q;
	struct ibv_cq *cq;
	struct db_dev d;
	double *lat = calloc(n, sizeof(double));
	unsigned int seed = 1;
	int i;

	db_dev_open(&d, dev_name);
	cq = ibv_create_cq(d.v.ctx, 64, NULL, NULL, 0);
	if (!cq || create_qp(&d, &q, cq, RXE_CREATE_QP_DOORBELL_PEER))
		die("create the peer QP");
	for (i = 0; i < n; i++) {
		uint64_t t0;

		/*
		 * The only slot went idle, so the engine sleeps; wait a random
		 * part of a scan interval more so that rings land at every
		 * phase of the scan.
		 */
		wait_disarmed(&q);
		usleep(2000 + rand_r(&seed) % (scan_us + 1));
		t0 = now_ns();
		one_write(&q, PATH_PEER, i);
		lat[i] = (now_ns() - t0) / 1e3;
	}
	printf("{\"scan_us\": %d, ", scan_us);
	print_stats("peer_after_sleep", lat, n);
	printf("}\n");
	raw_qp_destroy(&q);
	ibv_destroy_cq(cq);
	db_dev_close(&d);
}

/* CPU time (ns) and context switches of every doorbell engine thread. */
static void engine_schedstat(unsigned long long *ns, unsigned long long *sw, int *nthreads,
			     char *names, size_t len)
{
	DIR *dir = opendir("/proc");
	struct dirent *de;
	char path[300], comm[64];
	unsigned long long a, b, c;
	FILE *f;

	*ns = *sw = 0;
	*nthreads = 0;
	names[0] = 0;
	if (!dir)
		die("/proc");
	while ((de = readdir(dir))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		/* rxe_db/DEV, or rxe_db for the shared engine (not this program) */
		if (!fgets(comm, sizeof(comm), f) ||
		    (strncmp(comm, "rxe_db/", 7) && strcmp(comm, "rxe_db\n"))) {
			fclose(f);
			continue;
		}
		fclose(f);
		snprintf(path, sizeof(path), "/proc/%s/schedstat", de->d_name);
		f = fopen(path, "r");
		if (f && fscanf(f, "%llu %llu %llu", &a, &b, &c) == 3) {
			*ns += a;
			*sw += c;
			(*nthreads)++;
			comm[strcspn(comm, "\n")] = 0;
			snprintf(names + strlen(names), len - strlen(names), "%s%s",
				 names[0] ? " " : "", comm);
		}
		if (f)
			fclose(f);
	}
	closedir(dir);
}

/* Busy time of all CPUs from /proc/stat (USER_HZ ticks): all but idle and iowait. */
static double cpus_busy_ticks(void)
{
	unsigned long long v[10] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	double busy = 0;
	int i;

	if (!f || fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
			 &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7],
			 &v[8], &v[9]) < 8)
		die("/proc/stat");
	fclose(f);
	for (i = 0; i < 8; i++)
		if (i != 3 && i != 4)
			busy += v[i];
	return busy;
}

static void t_idle(int nqp, int seconds, int peer)
{
	struct raw_qp *q = calloc(nqp, sizeof(*q));
	unsigned long long ns0, ns1, sw0, sw1;
	double first[20], steady[20 * 20], busy0, busy1;
	char names[256];
	struct ibv_cq *cq;
	struct db_dev d;
	int i, j, nt;

	db_dev_open(&d, dev_name);
	cq = ibv_create_cq(d.v.ctx, 2 * nqp + 64, NULL, NULL, 0);
	if (!cq)
		die("cq");
	for (i = 0; i < nqp; i++) {
		if (create_qp(&d, &q[i], cq, peer ? RXE_CREATE_QP_DOORBELL_PEER :
			      RXE_CREATE_QP_DOORBELL))
			die("create QP %d: %s", i, strerror(errno));
		one_write(&q[i], PATH_PAGE, i);
	}
	for (i = 0; i < nqp; i++)
		wait_disarmed(&q[i]);
	usleep(100000);

	/*
	 * The thread's own time, and the busy time of the whole guest, which
	 * also holds the peer timer's softirqs and interrupts (this kernel
	 * charges them to whatever they interrupt): against a run without
	 * doorbell QPs it is the engine's cost.
	 */
	busy0 = cpus_busy_ticks();
	engine_schedstat(&ns0, &sw0, &nt, names, sizeof(names));
	sleep(seconds);
	engine_schedstat(&ns1, &sw1, &nt, names, sizeof(names));
	busy1 = cpus_busy_ticks();
	printf("{\"qps\": %d, \"peer\": %d, \"seconds\": %d, \"engine_threads\": \"%s\", "
	       "\"engine_cpu_pct\": %.3f, \"engine_switches_per_s\": %.1f, "
	       "\"guest_busy_pct\": %.3f",
	       nqp, peer, seconds, names, (ns1 - ns0) / (seconds * 1e7),
	       (double)(sw1 - sw0) / seconds,
	       100.0 * (busy1 - busy0) / (seconds * sysconf(_SC_CLK_TCK)));
	if (!nqp) {
		printf("}\n");
		goto out;
	}
	printf(", ");

	/* the first ring after idle, then 20 rings right after it */
	for (j = 0; j < 20; j++) {
		uint64_t t0;

		wait_disarmed(&q[0]);
		t0 = now_ns();
		one_write(&q[0], PATH_PAGE, 1000 + j);
		first[j] = (now_ns() - t0) / 1e3;
		for (i = 0; i < 20; i++) {
			t0 = now_ns();
			one_write(&q[0], PATH_PAGE, 2000 + i);
			steady[j * 20 + i] = (now_ns() - t0) / 1e3;
		}
	}
	print_stats("first_after_idle", first, 20);
	printf(", ");
	print_stats("steady", steady, 400);
	printf("}\n");
out:
	for (i = 0; i < nqp; i++)
		raw_qp_destroy(&q[i]);
	ibv_destroy_cq(cq);
	db_dev_close(&d);
	free(q);
}

static void t_scale(int n, int nidle, int peer)
{
	struct raw_qp *q = calloc(nidle + 1, sizeof(*q));
	double *lat = calloc(n, sizeof(double));
	struct ibv_cq *cq, *acq;
	struct db_dev d;
	int i;

	db_dev_open(&d, dev_name);
	cq = ibv_create_cq(d.v.ctx, 2 * nidle + 64, NULL, NULL, 0);
	acq = ibv_create_cq(d.v.ctx, 64, NULL, NULL, 0);
	if (!cq || !acq)
		die("cq");
	for (i = 1; i <= nidle; i++) {
		if (create_qp(&d, &q[i], cq, peer ? RXE_CREATE_QP_DOORBELL_PEER :
			      RXE_CREATE_QP_DOORBELL))
			die("create idle QP %d: %s", i, strerror(errno));
		one_write(&q[i], PATH_PAGE, i);
	}
	if (create_qp(&d, &q[0], acq, RXE_CREATE_QP_DOORBELL))
		die("create the active QP");
	for (i = 1; i <= nidle; i++)
		wait_disarmed(&q[i]);
	for (i = 0; i < 20; i++)
		one_write(&q[0], PATH_PAGE, i);
	for (i = 0; i < n; i++) {
		uint64_t t0 = now_ns();

		one_write(&q[0], PATH_PAGE, i);
		lat[i] = (now_ns() - t0) / 1e3;
	}
	printf("{\"qps\": %d, \"idle_peer\": %d, ", nidle + 1, peer);
	print_stats("page", lat, n);
	printf("}\n");
	for (i = 0; i <= nidle; i++)
		raw_qp_destroy(&q[i]);
	ibv_destroy_cq(cq);
	ibv_destroy_cq(acq);
	db_dev_close(&d);
	free(q);
	free(lat);
}

int main(int argc, char **argv)
{
	const char *t;

	if (argc < 3) {
		fprintf(stderr, "usage: %s DEV lat|peer-sleep|idle|scale ARGS\n", argv[0]);
		return 2;
	}
	dev_name = argv[1];
	t = argv[2];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(t, "lat") && argc >= 5)
		t_lat(atoi(argv[3]), argv[4], argc >= 6 ? argv[5] : NULL);
	else if (!strcmp(t, "peer-sleep") && argc >= 5)
		t_peer_sleep(atoi(argv[3]), atoi(argv[4]));
	else if (!strcmp(t, "idle") && argc >= 5)
		t_idle(atoi(argv[3]), atoi(argv[4]), argc >= 6 && !strcmp(argv[5], "peer"));
	else if (!strcmp(t, "scale") && argc >= 5)
		t_scale(atoi(argv[3]), atoi(argv[4]), argc >= 6 && !strcmp(argv[5], "peer"));
	else
		die("unknown or incomplete command %s", t);
	return 0;
}
