/* The fspf library (meta/fspf/fspf.h): paths, regions, encoding round trips, the sealed form under right and
 * wrong keys and tags, chunk binding, the parser on damaged input, and golden vectors that pin the bytes
 * of a tiny fixed manifest (docs/FORMAT.md, "File system protection file"). */
#include <fcntl.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "crypto/aead.h"
#include "crypto/mac.h"
#include "meta/common/status.h"
#include "meta/fspf/fspf.h"
#include "detrng.h"
#include "testutil.h"

static void write_file(const char *dir, const char *name, const void *data, size_t n)
{
	char p[1024];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
	close(fd);
}

/* A source tree: hello.txt (5000 bytes), d/x.txt (10 bytes), l -> hello.txt. */
static char *make_src(const char *tmp)
{
	char *src;
	ck_assert_int_ge(asprintf(&src, "%s/src", tmp), 0);
	ck_assert_int_eq(mkdir(src, 0755), 0);
	uint8_t data[5000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)("hello, fspf\n"[i % 12]);
	write_file(src, "hello.txt", data, sizeof(data));
	char d[1024];
	snprintf(d, sizeof(d), "%s/d", src);
	ck_assert_int_eq(mkdir(d, 0755), 0);
	write_file(d, "x.txt", "0123456789", 10);
	snprintf(d, sizeof(d), "%s/l", src);
	ck_assert_int_eq(symlink("hello.txt", d), 0);
	return src;
}

START_TEST(paths)
{
	char out[64];
	ck_assert_int_eq(fspf_path_normalize("//a///b/", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "/a/b");
	ck_assert_int_eq(fspf_path_normalize("/", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "/");
	ck_assert_int_eq(fspf_path_normalize("a/b", out, sizeof(out)), -1);
	ck_assert_int_eq(fspf_path_normalize("/a/../b", out, sizeof(out)), -1);
	ck_assert_int_eq(fspf_path_normalize("/a/./b", out, sizeof(out)), -1);
	/* '/' sorts below every byte: a subtree is contiguous */
	ck_assert_int_lt(fspf_path_cmp("/a", "/a/b"), 0);
	ck_assert_int_lt(fspf_path_cmp("/a/zzz", "/a-b"), 0);
	ck_assert_int_lt(fspf_path_cmp("/", "/a"), 0);
	ck_assert_int_eq(fspf_path_cmp("/a/b", "/a/b"), 0);
	ck_assert(fspf_path_under("/app/x", "/app"));
	ck_assert(fspf_path_under("/app", "/app"));
	ck_assert(!fspf_path_under("/apple", "/app"));
	ck_assert(fspf_path_under("/x", "/"));
}
END_TEST

START_TEST(regions)
{
	char err[256];
	fspf *m = fspf_new(0);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(fspf_add_region(m, "/", FSPF_NOT_PROTECTED, 0, err, sizeof(err)), 0);
	ck_assert_int_eq(fspf_add_region(m, "/usr/lib", FSPF_AUTHENTICATED, 4096, err, sizeof(err)), 0);
	ck_assert_int_eq(fspf_add_region(m, "/usr/lib/app", FSPF_ENCRYPTED, 0, err, sizeof(err)), 0);
	ck_assert_int_eq(fspf_region_of(m, "/usr/lib/app/x.py")->kind, FSPF_ENCRYPTED);
	ck_assert_int_eq(fspf_region_of(m, "/usr/lib/apps")->kind, FSPF_AUTHENTICATED);
	ck_assert_int_eq(fspf_region_of(m, "/etc/x")->kind, FSPF_NOT_PROTECTED);
	ck_assert_uint_eq(fspf_region_of(m, "/usr/lib/x")->chunk_size, 4096);
	ck_assert_int_eq(fspf_add_region(m, "/x", FSPF_ENCRYPTED, 1000, err, sizeof(err)), FS_ST_USAGE);
	ck_assert_int_eq(fspf_add_region(m, "x", FSPF_ENCRYPTED, 0, err, sizeof(err)), FS_ST_USAGE);
	fspf_free(m);
}
END_TEST

/* A manifest over make_src: / encrypted, /d authenticated, 4 KiB chunks; written to tmp/out. */
static fspf *build(const char *tmp)
{
	char *src = make_src(tmp), out[1024], err[512];
	snprintf(out, sizeof(out), "%s/out", tmp);
	fspf *m = fspf_new(FS_AEAD_AES256GCM);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(fspf_add_region(m, "/", FSPF_ENCRYPTED, 4096, err, sizeof(err)), 0);
	ck_assert_int_eq(fspf_add_region(m, "/d", FSPF_AUTHENTICATED, 4096, err, sizeof(err)), 0);
	ck_assert_msg(fspf_add_tree(m, "/", src, out, NULL, err, sizeof(err)) == 0, "%s", err);
	free(src);
	/* owner and times fixed, so that the bytes do not depend on who runs the test */
	for (uint32_t i = 0; i < m->nentries; i++) {
		fspf_entry *e = &m->entries[i];
		e->uid = e->gid = 0;
		e->mtime_s = 1700000000;
		e->mtime_ns = 0;
		e->mode = (e->mode & S_IFMT) | (S_ISDIR(e->mode) ? 0755 : S_ISLNK(e->mode) ? 0777 : 0644);
	}
	return m;
}

START_TEST(roundtrip_and_seal)
{
	char *tmp = test_tmpdir("fspf"), err[512];
	fspf *m = build(tmp), *w = NULL, *s = NULL;
	ck_assert_uint_eq(m->nentries, 5); /* / /d /d/x.txt /hello.txt /l */
	size_t n, n2, sn;
	uint8_t *a = fspf_encode_working(m, &n);
	ck_assert_int_eq(fspf_parse_file(a, n, NULL, NULL, &w, err, sizeof(err)), FS_OK);
	uint8_t *b = fspf_encode_working(w, &n2);
	ck_assert_uint_eq(n, n2);
	ck_assert_int_eq(memcmp(a, b, n), 0);
	uint8_t tag[32], other[32];
	uint8_t *sealed = fspf_encode_sealed(m, &sn, tag);
	ck_assert_ptr_null(memmem(sealed, sn, m->key, 32));
	ck_assert_ptr_null(memmem(sealed, sn, "hello.txt", 9)); /* names are encrypted */
	ck_assert_int_eq(fspf_parse_file(sealed, sn, m->key, tag, &s, err, sizeof(err)), FS_OK);
	ck_assert(s->sealed);
	ck_assert_uint_eq(s->nentries, m->nentries);
	fspf_free(s);
	ck_assert_int_eq(fspf_parse_file(sealed, sn, NULL, NULL, &s, err, sizeof(err)), FS_ST_USAGE);
	uint8_t wrong[32];
	memcpy(wrong, m->key, 32);
	wrong[31] ^= 1;
	ck_assert_int_eq(fspf_parse_file(sealed, sn, wrong, tag, &s, err, sizeof(err)), FS_ST_WRONG_KEY);
	memcpy(other, tag, 32);
	other[0] ^= 1;
	ck_assert_int_eq(fspf_parse_file(sealed, sn, m->key, other, &s, err, sizeof(err)), FS_ST_TAMPER);
	ck_assert(strstr(err, "tag mismatch"));
	/* every byte matters: with the tag (mismatch), and without it (the AEAD or the key check) */
	for (size_t i = 0; i < sn; i += 7) {
		sealed[i] ^= 0x20;
		int st = fspf_parse_file(sealed, sn, m->key, tag, &s, err, sizeof(err));
		ck_assert_msg(st != FS_OK, "byte %zu changed, still accepted", i);
		st = fspf_parse_file(sealed, sn, m->key, NULL, &s, err, sizeof(err));
		ck_assert_msg(st != FS_OK, "byte %zu changed, opened without tag", i);
		sealed[i] ^= 0x20;
	}
	for (size_t cut = 0; cut < sn; cut += 13)
		ck_assert_int_ne(fspf_parse_file(sealed, cut, m->key, NULL, &s, err, sizeof(err)), FS_OK);
	free(a);
	free(b);
	free(sealed);
	fspf_free(w);
	fspf_free(m);
	test_rmrf(tmp);
	free(tmp);
}
END_TEST

START_TEST(chunks_bound)
{
	char *tmp = test_tmpdir("fspf"), p[1024];
	fspf *m = build(tmp);
	long h = fspf_find(m, "/hello.txt"), x = fspf_find(m, "/d/x.txt");
	ck_assert_int_ge(h, 0);
	ck_assert_int_ge(x, 0);
	fspf_entry *e = &m->entries[h];
	ck_assert_int_eq(e->kind, FSPF_ENCRYPTED);
	ck_assert_int_eq(m->entries[x].kind, FSPF_AUTHENTICATED);
	ck_assert_uint_eq(fspf_nchunks(e), 2);
	ck_assert_uint_eq(fspf_chunk_len(e, 1), 5000 - 4096);
	uint8_t ct[5000], buf[4096];
	snprintf(p, sizeof(p), "%s/out/hello.txt", tmp);
	int fd = open(p, O_RDONLY);
	ck_assert_int_eq(read(fd, ct, sizeof(ct)), 5000);
	close(fd);
	fs_aead *a = fspf_file_aead(m, e);
	memcpy(buf, ct, 4096);
	ck_assert_int_eq(fspf_chunk_open(a, e, 0, buf, 4096), 0);
	ck_assert_int_eq(memcmp(buf, "hello, fspf\n", 12), 0);
	/* the chunk at another index, or under another file's key, does not open; nothing leaks */
	memcpy(buf, ct, 904);
	ck_assert_int_eq(fspf_chunk_open(a, e, 1, buf, 904), -1);
	for (int i = 0; i < 904; i++)
		ck_assert_int_eq(buf[i], 0);
	fspf_entry moved = *e;
	moved.path = "/other.txt";
	fs_aead *b = fspf_file_aead(m, &moved);
	memcpy(buf, ct, 4096);
	ck_assert_int_eq(fspf_chunk_open(b, &moved, 0, buf, 4096), -1);
	/* authenticated: the plain bytes verify, a changed one does not */
	fs_aead *ax = fspf_file_aead(m, &m->entries[x]);
	memcpy(buf, "0123456789", 10);
	ck_assert_int_eq(fspf_chunk_open(ax, &m->entries[x], 0, buf, 10), 0);
	buf[3] ^= 1;
	ck_assert_int_eq(fspf_chunk_open(ax, &m->entries[x], 0, buf, 10), -1);
	fs_aead_free(a);
	fs_aead_free(b);
	fs_aead_free(ax);
	fspf_free(m);
	test_rmrf(tmp);
	free(tmp);
}
END_TEST

START_TEST(parser_refuses)
{
	char *tmp = test_tmpdir("fspf"), err[512];
	fspf *m = build(tmp);
	size_t n;
	uint8_t *body = fspf_encode_body(m, &n);
	/* every truncation of a valid body, and trailing bytes, are refused */
	for (size_t cut = 0; cut < n; cut++) {
		fspf *t = calloc(1, sizeof(*t));
		ck_assert_int_eq(fspf_parse_body(t, body, cut, err, sizeof(err)), -1);
		fspf_free(t);
	}
	uint8_t *longer = malloc(n + 1);
	memcpy(longer, body, n);
	longer[n] = 0;
	fspf *t = calloc(1, sizeof(*t));
	ck_assert_int_eq(fspf_parse_body(t, longer, n + 1, err, sizeof(err)), -1);
	fspf_free(t);
	/* an entry count far beyond the input */
	size_t off = 4 + 4;
	for (uint32_t i = 0; i < m->nregions; i++)
		off += 2 + strlen(m->regions[i].path) + 8;
	memcpy(longer, body, n);
	fs_put_le32(longer + off, 0xffffff);
	t = calloc(1, sizeof(*t));
	ck_assert_int_eq(fspf_parse_body(t, longer, n, err, sizeof(err)), -1);
	fspf_free(t);
	/* the same body parses */
	t = calloc(1, sizeof(*t));
	ck_assert_msg(fspf_parse_body(t, body, n, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_ge(fspf_child(t, 0, "hello.txt", 9), 0);
	ck_assert_int_eq(fspf_child(t, 0, "nope", 4), -1);
	fspf_free(t);
	free(longer);
	free(body);
	fspf_free(m);
	test_rmrf(tmp);
	free(tmp);
}
END_TEST

/* Golden vectors: a deterministic random source (tests/unit/detrng.h). */
static void sha256_hex(const uint8_t *b, size_t n, char out[65])
{
	uint8_t md[32];
	unsigned mdlen = 0;
	EVP_Digest(b, n, md, &mdlen, EVP_sha256(), NULL);
	fs_hex(out, md, 32);
}

/* The pinned values (docs/FORMAT.md, "File system protection file"): a change to the layout, a domain
 * byte or a derivation changes them, and needs a new FSPF_VERSION. */
#define GOLDEN_SEALED_SHA256 "179e7b7fc65131dede899102ae01546317dad25895c4d2a8107325c5f0818c98"
#define GOLDEN_TAG "29995db8d8cbeb4d7b335e9cb9012333f8bbf042fd143a32690899f990cd56ee"
#define GOLDEN_CIPHERTEXT_SHA256 "0c6fcbecf856d3a65189d6e9d529a6c4ef4c034d05c2cb2b4b19a200d802efac"
#define GOLDEN_BODY_SHA256 "9973dff3dd93d11105f0389ed9257755664ea767ea1ec169bd10ba8dd975546c"

START_TEST(golden)
{
	detrng_start("fshield fspf golden rng seed...");
	char *tmp = test_tmpdir("fspf-golden"), p[1024], sealed_hex[65], tag_hex[65], ct_hex[65], body_hex[65];
	fspf *m = build(tmp);
	size_t sn, bn;
	uint8_t tag[32], ct[5000];
	uint8_t *sealed = fspf_encode_sealed(m, &sn, tag), *body = fspf_encode_body(m, &bn);
	snprintf(p, sizeof(p), "%s/out/hello.txt", tmp);
	int fd = open(p, O_RDONLY);
	ck_assert_int_eq(read(fd, ct, sizeof(ct)), 5000);
	close(fd);
	sha256_hex(sealed, sn, sealed_hex);
	sha256_hex(body, bn, body_hex);
	sha256_hex(ct, sizeof(ct), ct_hex);
	fs_hex(tag_hex, tag, 32);
	printf("fspf golden: sealed %zu bytes sha256 %s\n             tag %s\n             body %zu bytes sha256 %s\n"
	       "             hello.txt ciphertext sha256 %s\n", sn, sealed_hex, tag_hex, bn, body_hex, ct_hex);
	ck_assert_uint_eq(sn, 96 + bn + 16);
	ck_assert_str_eq(body_hex, GOLDEN_BODY_SHA256);
	ck_assert_str_eq(ct_hex, GOLDEN_CIPHERTEXT_SHA256);
	ck_assert_str_eq(sealed_hex, GOLDEN_SEALED_SHA256);
	ck_assert_str_eq(tag_hex, GOLDEN_TAG);
	free(sealed);
	free(body);
	fspf_free(m);
	test_rmrf(tmp);
	free(tmp);
}
END_TEST

static Suite *fspf_suite(void)
{
	Suite *s = suite_create("fspf");
	TEST_CASE(s, "fspf", "unit-fspf", 30, paths, regions, roundtrip_and_seal, chunks_bound, parser_refuses, golden);
	return s;
}

TEST_MAIN(fspf_suite)
