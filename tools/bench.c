/* fshield bench crypto: chunk sealing and opening throughput through fs_aead, next to the raw speed of
 * the same cipher measured in the same run, so that the cost of the layer itself is visible. */
#include <getopt.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sched.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/aead.h"
#include "crypto/keys.h"
#include "meta/keys.h"
#include "crypto/mac.h"
#include "meta/common/status.h"
#include "tools/commands.h"
#include "tools/json_out.h"

const char usage_bench[] =
	"bench crypto [--seconds S] [--json]\n"
	"  Measures, on one core, how fast chunks are sealed and opened through the volume's AEAD layer\n"
	"  (fs_aead) for each AEAD (aes-256-gcm, xchacha20-poly1305) and chunk size (4 KiB, 64 KiB, 1 MiB),\n"
	"  building the 56-byte associated data and drawing a fresh random nonce for every chunk. Next to\n"
	"  each row it shows the raw speed of the same cipher, measured in the same run on 16 KiB blocks with\n"
	"  one key setup, and the row's ratio to it. Target: at least 80% of raw at 64 KiB.\n"
	"  --seconds S  time per figure, after a warm-up (default 0.5); it is spent in 5 slices taken in turn\n"
	"               across the raw cipher and the rows, and the best slice counts\n"
	"  --json       print one JSON object instead of the table\n";

#define AD_BYTES 56
#define RAW_BLOCK (16 * 1024)
#define TARGET_CHUNK (64 * 1024)
#define TARGET_RATIO 0.80
#define MB 1e6

static const size_t chunk_sizes[] = { 4 * 1024, 64 * 1024, 1024 * 1024 };
#define NCHUNKS (sizeof(chunk_sizes) / sizeof(chunk_sizes[0]))
static const int aeads[] = { FS_AEAD_AES256GCM, FS_AEAD_XCHACHA20POLY1305 };
#define NAEADS (sizeof(aeads) / sizeof(aeads[0]))

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef int (*step_fn)(void *ctx);

/* Runs step over and over for at least `seconds`; returns bytes per second, or -1 if a step failed.
 * The clock is read about once per MiB processed, so reading it costs nothing measurable. */
static double run_for(step_fn step, void *ctx, size_t bytes_per_step, double seconds)
{
	size_t batch = bytes_per_step >= (1u << 20) ? 1 : (1u << 20) / bytes_per_step;
	unsigned long long steps = 0;
	double t0 = now(), t;
	do {
		for (size_t i = 0; i < batch; i++)
			if (step(ctx) != 0)
				return -1;
		steps += batch;
		t = now();
	} while (t - t0 < seconds);
	return (double)steps * (double)bytes_per_step / (t - t0);
}

static uint8_t *buffer(size_t n)
{
	uint8_t *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
	if (p)
		randombytes_buf(p, n);
	return p;
}

/* ---- through fs_aead, as the volume seals a chunk ---- */

struct chunk_bench {
	fs_aead *a;
	size_t len;
	uint8_t *pt, *ct, *out;
	uint8_t volid[FS_VOLID_BYTES], ad[AD_BYTES], nonce[FS_NONCE_BYTES], tag[FS_TAG_BYTES];
	uint64_t ino, gen, index, cgen;
};

/* The chunk AD as the volume builds it: volume id, then inode, inode generation, chunk index, chunk
 * generation and chunk length as little-endian u64s: 16 + 5 * 8 = 56 bytes. */
static void build_ad(struct chunk_bench *b)
{
	memcpy(b->ad, b->volid, FS_VOLID_BYTES);
	fs_put_le64(b->ad + 16, b->ino);
	fs_put_le64(b->ad + 24, b->gen);
	fs_put_le64(b->ad + 32, b->index);
	fs_put_le64(b->ad + 40, b->cgen);
	fs_put_le64(b->ad + 48, b->len);
}

static int seal_step(void *p)
{
	struct chunk_bench *b = p;
	b->index++;
	build_ad(b);
	fs_aead_random_nonce(b->nonce);
	return fs_aead_seal(b->a, b->nonce, b->ad, AD_BYTES, b->pt, b->len, b->ct, b->tag);
}

/* Opens the last sealed chunk again and again: the AD is rebuilt each time, as a reader must. */
static int open_step(void *p)
{
	struct chunk_bench *b = p;
	build_ad(b);
	return fs_aead_open(b->a, b->nonce, b->ad, AD_BYTES, b->ct, b->len, b->tag, b->out);
}

static void chunk_free(struct chunk_bench *b)
{
	fs_aead_free(b->a);
	free(b->pt);
	free(b->ct);
	free(b->out);
}

/* Sets up one AEAD at one chunk size and checks, once, that a sealed chunk opens to its plaintext.
 * The seal and open measurements share this state: after each seal step (index, nonce, ct, tag) belong
 * together, so the open step always opens the chunk sealed last. */
static int chunk_setup(struct chunk_bench *b, int alg, size_t len)
{
	uint8_t key[FS_KEY_BYTES];
	memset(b, 0, sizeof(*b));
	randombytes_buf(key, sizeof(key));
	randombytes_buf(b->volid, sizeof(b->volid));
	b->len = len;
	b->ino = 4242;
	b->gen = 1;
	b->cgen = 17;
	b->a = fs_aead_new(alg, key);
	sodium_memzero(key, sizeof(key));
	b->pt = buffer(len);
	b->ct = buffer(len);
	b->out = buffer(len);
	if (!b->a || !b->pt || !b->ct || !b->out) {
		fprintf(stderr, "fshield bench: %s: cannot set up (out of memory?)\n", fs_aead_alg_name(alg));
		return -1;
	}
	if (seal_step(b) != 0 || open_step(b) != 0 || memcmp(b->out, b->pt, len) != 0) {
		fprintf(stderr, "fshield bench: %s: a sealed chunk does not open to its plaintext\n",
			fs_aead_alg_name(alg));
		return -1;
	}
	return 0;
}

/* ---- the raw cipher limit ---- */

/* AES-256-GCM through OpenSSL EVP as `openssl speed -evp aes-256-gcm` drives it: one key setup, then
 * EVP_EncryptUpdate in place over 16 KiB blocks. The IV is renewed every 64 MiB only to stay far below
 * GCM's 64 GiB per IV limit on long runs. */
struct raw_gcm {
	EVP_CIPHER_CTX *c;
	uint8_t *buf, iv[12], tag[16];
	unsigned blocks;
};

static int raw_gcm_step(void *p)
{
	struct raw_gcm *r = p;
	int n;
	if (++r->blocks == 4096) {
		r->blocks = 0;
		sodium_increment(r->iv, sizeof(r->iv));
		if (EVP_EncryptFinal_ex(r->c, r->buf, &n) != 1 ||
		    EVP_CIPHER_CTX_ctrl(r->c, EVP_CTRL_GCM_GET_TAG, 16, r->tag) != 1 ||
		    EVP_EncryptInit_ex(r->c, NULL, NULL, NULL, r->iv) != 1)
			return -1;
	}
	return EVP_EncryptUpdate(r->c, r->buf, &n, r->buf, RAW_BLOCK) == 1 ? 0 : -1;
}

/* XChaCha20-Poly1305: the libsodium call itself on 16 KiB blocks, no AD. */
struct raw_xchacha {
	uint8_t *buf, key[32], nonce[24], tag[16];
};

static int raw_xchacha_step(void *p)
{
	struct raw_xchacha *r = p;
	sodium_increment(r->nonce, sizeof(r->nonce));
	return crypto_aead_xchacha20poly1305_ietf_encrypt_detached(r->buf, r->tag, NULL, r->buf, RAW_BLOCK, NULL, 0,
								    NULL, r->nonce, r->key);
}

static int raw_gcm_setup(struct raw_gcm *r)
{
	uint8_t key[32];
	memset(r, 0, sizeof(*r));
	randombytes_buf(key, sizeof(key));
	randombytes_buf(r->iv, sizeof(r->iv));
	r->buf = buffer(RAW_BLOCK);
	r->c = EVP_CIPHER_CTX_new();
	int ok = r->buf && r->c && EVP_EncryptInit_ex(r->c, EVP_aes_256_gcm(), NULL, key, r->iv) == 1;
	sodium_memzero(key, sizeof(key));
	return ok ? 0 : -1;
}

static void raw_gcm_free(struct raw_gcm *r)
{
	EVP_CIPHER_CTX_free(r->c);
	free(r->buf);
}

static int raw_xchacha_setup(struct raw_xchacha *r)
{
	memset(r, 0, sizeof(*r));
	randombytes_buf(r->key, sizeof(r->key));
	randombytes_buf(r->nonce, sizeof(r->nonce));
	r->buf = buffer(RAW_BLOCK);
	return r->buf ? 0 : -1;
}

static void raw_xchacha_free(struct raw_xchacha *r)
{
	sodium_memzero(r->key, sizeof(r->key));
	free(r->buf);
}

/* ---- driver and output ---- */

struct result {
	double raw; /* bytes/s */
	double seal[NCHUNKS], open[NCHUNKS];
};

/* Each measurement is split into SLICES slices, taken in turn across the raw cipher and every row of one
 * AEAD, and the best slice counts. A slow patch (another process, a clock change) then hits the raw
 * limit and the rows alike instead of skewing one ratio, and a slice it spoils is simply not the best. */
#define SLICES 5

struct meas {
	step_fn step;
	void *ctx;
	size_t bytes;
	double *best;
};

static int bench_aead(int alg, double seconds, struct result *res)
{
	struct chunk_bench cb[NCHUNKS];
	struct raw_gcm rg;
	struct raw_xchacha rx;
	struct meas m[1 + 2 * NCHUNKS];
	size_t nm = 0, ready = 0;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	if (alg == FS_AEAD_AES256GCM) {
		m[nm++] = (struct meas){ raw_gcm_step, &rg, RAW_BLOCK, &res->raw };
		if (raw_gcm_setup(&rg) != 0)
			goto no_raw;
	} else {
		m[nm++] = (struct meas){ raw_xchacha_step, &rx, RAW_BLOCK, &res->raw };
		if (raw_xchacha_setup(&rx) != 0)
			goto no_raw;
	}
	for (; ready < NCHUNKS; ready++) {
		if (chunk_setup(&cb[ready], alg, chunk_sizes[ready]) != 0) {
			ready++; /* partly set up: free it too */
			goto out;
		}
		m[nm++] = (struct meas){ seal_step, &cb[ready], chunk_sizes[ready], &res->seal[ready] };
		m[nm++] = (struct meas){ open_step, &cb[ready], chunk_sizes[ready], &res->open[ready] };
	}
	/* Warm-up: caches, page faults, clock speed. */
	for (size_t i = 0; i < nm; i++)
		if (run_for(m[i].step, m[i].ctx, m[i].bytes, seconds / 5) < 0)
			goto failed;
	for (int slice = 0; slice < SLICES; slice++)
		for (size_t i = 0; i < nm; i++) {
			double bps = run_for(m[i].step, m[i].ctx, m[i].bytes, seconds / SLICES);
			if (bps < 0)
				goto failed;
			if (bps > *m[i].best)
				*m[i].best = bps;
		}
	rc = 0;
	goto out;
no_raw:
	fprintf(stderr, "fshield bench: %s: cannot set up the raw cipher\n", fs_aead_alg_name(alg));
	goto out;
failed:
	fprintf(stderr, "fshield bench: %s: sealing or opening failed during the measurement\n",
		fs_aead_alg_name(alg));
out:
	if (alg == FS_AEAD_AES256GCM)
		raw_gcm_free(&rg);
	else
		raw_xchacha_free(&rx);
	for (size_t i = 0; i < ready; i++)
		chunk_free(&cb[i]);
	return rc;
}

static const char *raw_how(int alg)
{
	return alg == FS_AEAD_AES256GCM ? "OpenSSL EVP, in place, one key setup"
					: "libsodium encrypt_detached, no AD";
}

static size_t target_index(void)
{
	for (size_t i = 0; i < NCHUNKS; i++)
		if (chunk_sizes[i] == TARGET_CHUNK)
			return i;
	return 0;
}

static int target_met(const struct result *r)
{
	size_t t = target_index();
	return r->seal[t] >= TARGET_RATIO * r->raw && r->open[t] >= TARGET_RATIO * r->raw;
}

/* x (not negative) rounded to d decimals, as the table shows it. */
static json_t *jround(double x, int d)
{
	double f = d == 1 ? 10 : d == 2 ? 100 : 1000;
	return json_real((double)(long long)(x * f + 0.5) / f);
}

static int print_json(const struct result *res, double seconds, int cpu)
{
	json_t *raw = json_array(), *rows = json_array(), *targets = json_array();
	int bad = !raw || !rows || !targets;
	for (size_t a = 0; a < NAEADS; a++)
		bad = bad || json_array_append_new(raw, json_pack("{s:s, s:o}", "aead", fs_aead_alg_name(aeads[a]), "mbps",
								   jround(res[a].raw / MB, 1)));
	for (size_t a = 0; a < NAEADS; a++)
		for (size_t c = 0; c < NCHUNKS; c++)
			for (int op = 0; op < 2; op++) {
				double bps = op ? res[a].open[c] : res[a].seal[c];
				bad = bad || json_array_append_new(
						     rows, json_pack("{s:s, s:s, s:I, s:o, s:o, s:o}", "aead",
								     fs_aead_alg_name(aeads[a]), "op", op ? "open" : "seal",
								     "chunk", (json_int_t)chunk_sizes[c], "mbps",
								     jround(bps / MB, 1), "raw_mbps", jround(res[a].raw / MB, 1),
								     "ratio", jround(bps / res[a].raw, 3)));
			}
	size_t t = target_index();
	for (size_t a = 0; a < NAEADS; a++)
		bad = bad || json_array_append_new(targets, json_pack("{s:s, s:o, s:o, s:b}", "aead", fs_aead_alg_name(aeads[a]),
								       "seal_ratio", jround(res[a].seal[t] / res[a].raw, 3),
								       "open_ratio", jround(res[a].open[t] / res[a].raw, 3),
								       "met", target_met(&res[a])));
	json_t *d = bad ? NULL
			: json_pack("{s:s, s:f, s:i, s:o, s:i}", "bench", "crypto", "seconds", seconds, "slices", SLICES,
				    "cpu", cpu >= 0 ? json_integer(cpu) : json_null(), "mb", 1000000);
	if (d && (json_set_name(d, "openssl", OpenSSL_version(OPENSSL_VERSION)) ||
		  json_set_name(d, "libsodium", sodium_version_string()) ||
		  json_set_name(d, "default_aead", fs_aead_alg_name(fs_aead_default_alg())) ||
		  json_object_set_new(d, "ad_bytes", json_integer(AD_BYTES)) ||
		  json_object_set_new(d, "raw_block", json_integer(RAW_BLOCK)) ||
		  json_object_set_new(d, "target", json_pack("{s:i, s:o}", "chunk", TARGET_CHUNK, "min_ratio",
							      jround(TARGET_RATIO, 2))) ||
		  json_object_set(d, "raw", raw) || json_object_set(d, "rows", rows) ||
		  json_object_set(d, "targets", targets))) {
		json_decref(d);
		d = NULL;
	}
	json_decref(raw);
	json_decref(rows);
	json_decref(targets);
	return json_print(d, 1);
}

static void print_table(const struct result *res, double seconds, int cpu)
{
	char where[32] = "not pinned";
	if (cpu >= 0)
		snprintf(where, sizeof(where), "pinned to cpu %d", cpu);
	printf("fshield bench crypto: one thread (%s); each figure: %.2f s in %d interleaved slices after a warm-up,\n"
	       "the best slice counts; MB = 10^6 bytes\n",
	       where, seconds, SLICES);
	printf("%s, libsodium %s; volume default on this CPU: %s\n\n", OpenSSL_version(OPENSSL_VERSION),
	       sodium_version_string(), fs_aead_alg_name(fs_aead_default_alg()));

	printf("raw cipher limit, %d KiB blocks, same run:\n", RAW_BLOCK / 1024);
	for (size_t a = 0; a < NAEADS; a++)
		printf("  %-20s %-38s %9.1f MB/s\n", fs_aead_alg_name(aeads[a]), raw_how(aeads[a]), res[a].raw / MB);

	printf("\nthrough fs_aead, %d-byte AD built and a fresh random nonce drawn per chunk:\n", AD_BYTES);
	printf("  %-20s %-5s %9s %10s %10s %8s\n", "aead", "op", "chunk", "MB/s", "raw MB/s", "of raw");
	for (size_t a = 0; a < NAEADS; a++)
		for (size_t c = 0; c < NCHUNKS; c++)
			for (int op = 0; op < 2; op++) {
				double bps = op ? res[a].open[c] : res[a].seal[c];
				char sz[32];
				if (chunk_sizes[c] >= 1024 * 1024)
					snprintf(sz, sizeof(sz), "%zu MiB", chunk_sizes[c] >> 20);
				else
					snprintf(sz, sizeof(sz), "%zu KiB", chunk_sizes[c] >> 10);
				printf("  %-20s %-5s %9s %10.1f %10.1f %7.1f%%\n", fs_aead_alg_name(aeads[a]),
				       op ? "open" : "seal", sz, bps / MB, res[a].raw / MB, 100 * bps / res[a].raw);
			}

	size_t t = target_index();
	printf("\ntarget: seal and open at %d KiB >= %.0f%% of raw\n", TARGET_CHUNK / 1024, 100 * TARGET_RATIO);
	for (size_t a = 0; a < NAEADS; a++)
		printf("  %-20s seal %5.1f%%  open %5.1f%%  %s\n", fs_aead_alg_name(aeads[a]),
		       100 * res[a].seal[t] / res[a].raw, 100 * res[a].open[t] / res[a].raw,
		       target_met(&res[a]) ? "met" : "NOT MET");
}

/* One core: stay on the CPU we started on, so that migrations do not show up as noise. */
static int pin_to_current_cpu(void)
{
	int cpu = sched_getcpu();
	if (cpu < 0)
		return -1;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) == 0 ? cpu : -1;
}

static int parse_seconds(const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || *end || !isfinite(v) || v < 0.01 || v > 600)
		return -1;
	*out = v;
	return 0;
}

int cmd_bench(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	double seconds = 0.5;
	int json = 0, c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (parse_seconds(optarg, &seconds) != 0) {
				fprintf(stderr, "fshield bench: --seconds takes a number from 0.01 to 600, not '%s'\n",
					optarg);
				return FS_ST_USAGE;
			}
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			print_usage(stdout, usage_bench);
			return 0;
		default:
			print_usage(stderr, usage_bench);
			return FS_ST_USAGE;
		}
	}
	if (optind != argc - 1 || strcmp(argv[optind], "crypto") != 0) {
		print_usage(stderr, usage_bench);
		return FS_ST_USAGE;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "fshield bench: cannot initialise libsodium\n");
		return FS_ST_IO;
	}

	int cpu = pin_to_current_cpu();
	if (!json)
		fprintf(stderr, "fshield bench: measuring, about %.0f s ...\n",
			seconds * 1.2 * (double)(NAEADS * (1 + 2 * NCHUNKS)) + 0.5);
	struct result res[NAEADS];
	for (size_t a = 0; a < NAEADS; a++)
		if (bench_aead(aeads[a], seconds, &res[a]) != 0)
			return FS_ST_IO;
	if (json)
		return print_json(res, seconds, cpu) ? FS_ST_IO : 0;
	else
		print_table(res, seconds, cpu);
	return 0;
}
