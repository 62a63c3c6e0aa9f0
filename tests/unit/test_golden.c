/* Golden vectors: a tiny volume made with a fixed key, a deterministic random source and a fixed clock.
 * Its header bytes, its chunk bytes and its root are pinned here, so any change to the on-disk format
 * (docs/FORMAT.md) fails loudly. A deliberate format change updates these values together with the
 * format version and the document. They also change, with the format unchanged, when the random draws
 * change order or size (the nonce pool draws 4 KiB at once): then only the values here change. */
#include <fcntl.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <sys/stat.h>

#include "crypto/aead.h"
#include "fs/volume/volume.h"
#include "meta/header.h"
#include "detrng.h"
#include "testutil.h"

static void fixed_clock(struct timespec *ts)
{
	ts->tv_sec = 1700000000;
	ts->tv_nsec = 123456789;
}

static void sha256_file(const char *path, char out[65])
{
	int fd = open(path, O_RDONLY);
	ck_assert_msg(fd >= 0, "open %s", path);
	uint8_t buf[65536], md[32];
	unsigned mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		EVP_DigestUpdate(c, buf, (size_t)n);
	close(fd);
	EVP_DigestFinal_ex(c, md, &mdlen);
	EVP_MD_CTX_free(c);
	fs_hex(out, md, 32);
}

/* The pinned values. */
#define GOLDEN_HEADER_SHA256 "99a181acb783ed546eb619e2050ca29b62289e8f108de6e201f8f7ec8749e815"
#define GOLDEN_PACK_SHA256 "8da53fa88dc95c5ee459ec47fdbb15e670ee2d989003809398e43593945d37da"
#define GOLDEN_ROOT "8658086b4452a100234806be52e7b7a6b14197bf3329fc76fbfa9822edad531b"
#define GOLDEN_VOLID "a3837ce65e86c123399f7559f26b1179"

START_TEST(fixed_volume)
{
	detrng_start("fshield golden vector rng seed!");
	fs_test_set_clock(fixed_clock);
	char *tmp = test_tmpdir("golden"), dir[512], trust[600], path[1024];
	snprintf(dir, sizeof(dir), "%s/b", tmp);
	snprintf(trust, sizeof(trust), "file:%s/trust.db", tmp);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	uint8_t key[32];
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
	fs_volume_opts o = { .dir = dir, .key = key, .trust_uri = trust, .chunk_size = 4096,
			     .aead_alg = FS_AEAD_AES256GCM };
	char err[256] = "";
	ck_assert_msg(fsv_create(&o, err, sizeof(err)) == 0, "%s", err);
	fs_volume *v;
	ck_assert_msg(fsv_open(&o, &v, err, sizeof(err)) == 0, "%s", err);
	/* Owner and times fixed, so the root does not depend on who runs the test. */
	fs_attr in = { .uid = 1000, .gid = 1000, .mode = 0755 }, a;
	in.atime.tv_sec = in.mtime.tv_sec = in.ctime.tv_sec = 1700000000;
	int all = FS_SET_UID | FS_SET_GID | FS_SET_MODE | FS_SET_ATIME | FS_SET_MTIME | FS_SET_CTIME;
	ck_assert_int_eq(fsv_mknod(v, FS_ROOT_INO, "hello.txt", S_IFREG | 0644, 0, 1000, 1000, &a), 0);
	uint64_t f = a.ino, fgen = a.gen;
	uint8_t data[5000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)("hello, fshield\n"[i % 15]);
	ck_assert_int_eq(fsv_write(v, f, data, sizeof(data), 0), (ssize_t)sizeof(data));
	ck_assert_int_eq(fsv_setattr(v, f, &in, all & ~FS_SET_MODE, &a), 0);
	ck_assert_int_eq(fsv_setattr(v, FS_ROOT_INO, &in, all, &a), 0);
	ck_assert_int_eq(fsv_commit(v), 0);
	fs_volume_info info;
	fsv_info(v, &info);
	ck_assert_int_eq(fsv_close(v), 0);
	char root[65], volid[33], hdr[65], pack[65];
	fs_hex(root, info.root, 32);
	fs_hex(volid, info.volid, 16);
	snprintf(path, sizeof(path), "%s/volume.hdr", dir);
	sha256_file(path, hdr);
	snprintf(path, sizeof(path), "%s/d/%02x/%016llx.%llx", dir, (unsigned)(f & 0xff), (unsigned long long)f,
		 (unsigned long long)fgen);
	sha256_file(path, pack);
	printf("golden: volid %s\n        header sha256 %s\n        pack sha256 %s\n        root %s\n", volid, hdr,
	       pack, root);
	ck_assert_uint_eq(info.version, 1);
	ck_assert_str_eq(volid, GOLDEN_VOLID);
	ck_assert_str_eq(hdr, GOLDEN_HEADER_SHA256);
	ck_assert_str_eq(pack, GOLDEN_PACK_SHA256);
	ck_assert_str_eq(root, GOLDEN_ROOT);
	/* And the pinned volume still opens and reads back. */
	ck_assert_msg(fsv_open(&o, &v, err, sizeof(err)) == 0, "%s", err);
	uint8_t back[5000];
	ck_assert_int_eq(fsv_read(v, f, back, sizeof(back), 0), (ssize_t)sizeof(back));
	ck_assert_mem_eq(back, data, sizeof(data));
	fsv_close(v);
	fs_test_set_clock(NULL);
	test_rmrf(tmp);
	free(tmp);
}
END_TEST

int main(void)
{
	/* The random source must be replaced before libsodium initialises. */
	detrng_start("fshield golden vector rng seed!");
	if (fs_crypto_init() != 0)
		return 1;
	Suite *s = suite_create("golden");
	TEST_CASE(s, "format", "unit-golden", 30, fixed_volume);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
