/* Metadata benchmark: the cost of a commit and of an offline verification as the volume grows.
 *  - commit of 10,000 changed files (time per file);
 *  - commit of ONE changed file in volumes of 1,000 / 10,000 / 100,000 files: the root update must not
 *    grow linearly with the file count (printed as a ratio to the smallest volume);
 *  - verification of the 100,000-file volume (time per file).
 * Runs in a private directory under $TMPDIR; usage: meta_bench [MAX_FILES] (default 100000). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto/keys.h"
#include "fs/volume/verify.h"
#include "fs/volume/volume.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "meta_bench: %s failed: %d\n", what, rc);
	exit(1);
}

struct vol {
	char dir[1024], trust[1100];
	fs_volume *v;
	uint64_t *files;
	size_t n;
};

static uint8_t key[32];

static fs_volume_opts opts(struct vol *s)
{
	fs_volume_opts o = { .dir = s->dir, .key = key, .trust_uri = s->trust };
	return o;
}

/* n files of 100 bytes, 1000 per directory, committed. */
static void build(struct vol *s, const char *base, size_t n)
{
	snprintf(s->dir, sizeof(s->dir), "%s/v%zu", base, n);
	snprintf(s->trust, sizeof(s->trust), "file:%s/trust%zu.db", base, n);
	if (mkdir(s->dir, 0700) != 0)
		die("mkdir", -errno);
	fs_volume_opts o = opts(s);
	char err[256];
	int st = fsv_create(&o, err, sizeof(err));
	if (st)
		die(err, st);
	if ((st = fsv_open(&o, &s->v, err, sizeof(err))) != 0)
		die(err, st);
	s->files = malloc(n * sizeof(uint64_t));
	s->n = n;
	uint64_t dir = 0;
	char name[32], data[100];
	memset(data, 'x', sizeof(data));
	for (size_t i = 0; i < n; i++) {
		fs_attr a;
		if (i % 1000 == 0) {
			snprintf(name, sizeof(name), "d%zu", i / 1000);
			if ((st = fsv_mkdir(s->v, FS_ROOT_INO, name, 0755, 0, 0, &a)) != 0)
				die("mkdir", st);
			dir = a.ino;
		}
		snprintf(name, sizeof(name), "f%zu", i);
		if ((st = fsv_mknod(s->v, dir, name, S_IFREG | 0644, 0, 0, 0, &a)) != 0)
			die("mknod", st);
		s->files[i] = a.ino;
		if (fsv_write(s->v, a.ino, data, sizeof(data), 0) != (ssize_t)sizeof(data))
			die("write", -1);
	}
	if ((st = fsv_commit(s->v)) != 0)
		die("commit", st);
}

/* Seconds for a commit after changing k files (spread over the volume). */
static double commit_after_changes(struct vol *s, size_t k, int round)
{
	char data[8];
	snprintf(data, sizeof(data), "r%05d", round % 100000);
	size_t step = s->n / k ? s->n / k : 1;
	for (size_t i = 0; i < k; i++)
		if (fsv_write(s->v, s->files[(i * step + (size_t)round) % s->n], data, 6, 0) != 6)
			die("write", -1);
	double t = now();
	int rc = fsv_commit(s->v);
	if (rc)
		die("commit", rc);
	return now() - t;
}

static double best_of(struct vol *s, size_t k, int reps)
{
	double best = 1e9;
	for (int r = 0; r < reps; r++) {
		double t = commit_after_changes(s, k, r + 1);
		if (t < best)
			best = t;
	}
	return best;
}

static void on_finding(void *ctx, const fs_finding *f)
{
	(void)ctx;
	fprintf(stderr, "  finding: %s\n", f->message);
}

int main(int argc, char **argv)
{
	size_t maxn = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
	if (fs_crypto_init() != 0 || maxn < 10000)
		return 2;
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(i * 7);
	const char *tmp = getenv("TMPDIR");
	char base[512];
	snprintf(base, sizeof(base), "%s/fshield-metabench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(base))
		return 2;
	size_t sizes[3] = { maxn / 100, maxn / 10, maxn };
	double one[3];
	struct vol vols[3];
	printf("metadata benchmark (chunk size 64 KiB, 4096 buckets, local trust store)\n");
	for (int i = 0; i < 3; i++) {
		double t = now();
		build(&vols[i], base, sizes[i]);
		double tb = now() - t;
		one[i] = best_of(&vols[i], 1, 9);
		printf("  volume of %7zu files: built in %6.2f s; commit of 1 changed file: %8.3f ms (%.2fx the "
		       "smallest volume)\n",
		       sizes[i], tb, one[i] * 1e3, one[i] / one[0]);
		if (i < 2) {
			fsv_close(vols[i].v);
			free(vols[i].files);
		}
	}
	struct vol *big = &vols[2];
	size_t k = 10000;
	double t10k = best_of(big, k, 3);
	printf("  commit of %zu changed files in the %zu-file volume: %.3f s (%.1f us per file)\n", k, big->n, t10k,
	       t10k / (double)k * 1e6);
	fsv_close(big->v);
	fs_volume_opts o = opts(big);
	fs_verify_result res;
	double t = now();
	int st = fsv_verify(&o, NULL, on_finding, NULL, &res);
	double tv = now() - t;
	printf("  verify of the %zu-file volume: %.2f s (%.1f us per file), status %d\n", big->n, tv,
	       tv / (double)big->n * 1e6, st);
	printf("  file-count growth x%zu -> single-file commit cost x%.2f (linear would be x%zu)\n",
	       sizes[2] / sizes[0], one[2] / one[0], sizes[2] / sizes[0]);
	free(big->files);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		fprintf(stderr, "meta_bench: could not remove %s\n", base);
	return st;
}
