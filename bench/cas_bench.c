/* Commit throughput and latency against a trust anchor, with N volumes committing concurrently (one
 * thread each): every round writes 4 KiB into one file of the volume and commits (fsv_commit, the work of
 * an fsync: data, prepared row, compare-and-swap at the anchor, mark).
 *
 *   cas_bench DIR ANCHOR N SECONDS
 *     ANCHOR "file:PATH" (one local trust store for all volumes) or "cas://HOST:PORT/NS/SESSION/PREFIX":
 *     volume i uses cas://HOST:PORT/NS/SESSION/PREFIXi (the session must name PREFIX0 .. PREFIX{N-1}).
 *     Volumes are created in DIR/vI (which must not exist) with a random key.
 * Prints one line: anchor kind, N, commits, seconds, commits per second, p50 and p99 commit latency in ms.
 * bench/cas-bench.sh runs it against a CAS it starts and against a local trust store. */
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "crypto/keys.h"
#include "fs/volume/volume.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static pthread_barrier_t go;

struct worker {
	char dir[1024], uri[1024];
	double secs;
	double *lat;
	size_t n, cap;
	int failed;
	char err[512];
};

static void *run(void *p)
{
	struct worker *w = p;
	uint8_t key[32];
	randombytes_buf(key, sizeof(key));
	/* The TLS files come from the environment, as for the fshield command (bench/cas-bench.sh sets them). */
	fs_volume_opts o = { .dir = w->dir, .key = key, .trust_uri = w->uri,
			     .tls = { .cert = getenv("FSHIELD_TLS_CERT"), .key = getenv("FSHIELD_TLS_KEY"),
				      .ca = getenv("FSHIELD_CA") } };
	fs_volume *v;
	fs_attr a;
	int st = fsv_create(&o, w->err, sizeof(w->err));
	if (!st)
		st = fsv_open(&o, &v, w->err, sizeof(w->err));
	if (st) {
		w->failed = st;
		pthread_barrier_wait(&go);
		return NULL;
	}
	if ((st = fsv_mknod(v, FS_ROOT_INO, "f", S_IFREG | 0644, 0, 0, 0, &a)) != 0 || (st = fsv_commit(v)) != 0) {
		snprintf(w->err, sizeof(w->err), "setup: %s", strerror(-st));
		w->failed = 1;
		fsv_close(v);
		pthread_barrier_wait(&go);
		return NULL;
	}
	/* Creation and opening are not timed: every volume starts committing at the same moment. */
	pthread_barrier_wait(&go);
	double until = now() + w->secs;
	char buf[4096];
	for (uint64_t i = 0; now() < until; i++) {
		memset(buf, (int)(i & 0xff), sizeof(buf));
		double t0 = now();
		if (fsv_write(v, a.ino, buf, sizeof(buf), (i % 16) * sizeof(buf)) != (ssize_t)sizeof(buf) ||
		    (st = fsv_commit(v)) != 0) {
			snprintf(w->err, sizeof(w->err), "commit %llu failed", (unsigned long long)i);
			w->failed = 1;
			break;
		}
		if (w->n == w->cap) {
			w->cap = w->cap ? 2 * w->cap : 1024;
			w->lat = realloc(w->lat, w->cap * sizeof(double));
			if (!w->lat)
				abort();
		}
		w->lat[w->n++] = now() - t0;
	}
	fsv_close(v);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: cas_bench DIR ANCHOR N SECONDS\n");
		return 64;
	}
	if (fs_crypto_init() != 0)
		return 1;
	const char *dir = argv[1], *anchor = argv[2];
	int n = atoi(argv[3]);
	double secs = atof(argv[4]);
	if (n < 1 || n > 1024 || secs <= 0)
		return 64;
	int cas = strncmp(anchor, "cas://", 6) == 0;
	struct worker *w = calloc((size_t)n, sizeof(*w));
	pthread_t *t = calloc((size_t)n, sizeof(*t));
	if (!w || !t)
		return 1;
	pthread_barrier_init(&go, NULL, (unsigned)n);
	for (int i = 0; i < n; i++) {
		snprintf(w[i].dir, sizeof(w[i].dir), "%s/v%d", dir, i);
		if (mkdir(w[i].dir, 0700) != 0) {
			fprintf(stderr, "cas_bench: %s: %s\n", w[i].dir, strerror(errno));
			return 1;
		}
		if (cas)
			snprintf(w[i].uri, sizeof(w[i].uri), "%s%d", anchor, i);
		else
			snprintf(w[i].uri, sizeof(w[i].uri), "%s", anchor);
	}
	for (int i = 0; i < n; i++) {
		w[i].secs = secs;
		pthread_create(&t[i], NULL, run, &w[i]);
	}
	size_t total = 0;
	int failed = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		total += w[i].n;
		if (w[i].failed) {
			fprintf(stderr, "cas_bench: volume %d: %s\n", i, w[i].err);
			failed = 1;
		}
	}
	double *all = malloc((total ? total : 1) * sizeof(double));
	size_t k = 0;
	for (int i = 0; i < n; i++)
		for (size_t j = 0; j < w[i].n; j++)
			all[k++] = w[i].lat[j];
	qsort(all, total, sizeof(double), cmp);
	double p50 = total ? all[total / 2] : 0, p99 = total ? all[(size_t)((double)total * 0.99)] : 0;
	printf("%-5s volumes %3d  commits %7zu  %8.1f commits/s  p50 %7.2f ms  p99 %7.2f ms\n", cas ? "cas" : "file",
	       n, total, (double)total / secs, p50 * 1e3, p99 * 1e3);
	for (int i = 0; i < n; i++)
		free(w[i].lat);
	free(all);
	free(w);
	free(t);
	return failed;
}
