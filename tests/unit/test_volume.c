/* The volume library through its API: create, write, read, commit, reopen, namespace operations,
 * truncate and holes, xattrs, and fail-closed reads of tampered data. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "fs/volume/rekey.h"
#include "fs/volume/verify.h"
#include "fs/volume/volume.h"
#include "testutil.h"

static char *tmp, *dir, trust[512];
static uint8_t key[32];

static void setup(void)
{
	tmp = test_tmpdir("vol");
	if (asprintf(&dir, "%s/backing", tmp) < 0 || mkdir(dir, 0700) != 0)
		abort();
	snprintf(trust, sizeof(trust), "file:%s/trust.db", tmp);
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
}

static void teardown(void)
{
	test_rmrf(tmp);
	free(tmp);
	free(dir);
}

static fs_volume_opts opts(void)
{
	fs_volume_opts o = { .dir = dir, .key = key, .trust_uri = trust, .chunk_size = 4096 };
	return o;
}

static fs_volume *open_vol(void)
{
	fs_volume_opts o = opts();
	fs_volume *v = NULL;
	char err[256] = "";
	int st = fsv_open(&o, &v, err, sizeof(err));
	ck_assert_msg(st == 0, "open: %d %s", st, err);
	return v;
}

static void create_vol(void)
{
	fs_volume_opts o = opts();
	char err[256] = "";
	int st = fsv_create(&o, err, sizeof(err));
	ck_assert_msg(st == 0, "create: %d %s", st, err);
}

static uint64_t mkdir_ok(fs_volume *v, uint64_t parent, const char *name, uint32_t mode)
{
	fs_attr a;
	int rc = fsv_mkdir(v, parent, name, mode, 0, 0, &a);
	ck_assert_msg(rc == 0, "mkdir %s: %d", name, rc);
	return a.ino;
}

/* A volume created for this test and opened. */
static fs_volume *new_vol(void)
{
	create_vol();
	return open_vol();
}

static uint64_t mkfile(fs_volume *v, uint64_t parent, const char *name)
{
	fs_attr a;
	int rc = fsv_mknod(v, parent, name, S_IFREG | 0644, 0, 0, 0, &a);
	ck_assert_msg(rc == 0, "mknod %s: %d", name, rc);
	return a.ino;
}

static void fill(uint8_t *buf, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(i * 31 + seed + (i >> 12));
}

START_TEST(roundtrip_across_reopen)
{
	fs_volume *v = new_vol();
	fs_attr a;
	uint64_t sub = mkdir_ok(v, FS_ROOT_INO, "sub", 0755);
	uint64_t f = mkfile(v, sub, "data");
	size_t n = 3 * 4096 + 123;
	uint8_t *buf = malloc(n), *back = malloc(n);
	fill(buf, n, 7);
	ck_assert_int_eq(fsv_write(v, f, buf, n, 0), (ssize_t)n);
	ck_assert_int_eq(fsv_read(v, f, back, n, 0), (ssize_t)n);
	ck_assert_mem_eq(buf, back, n);
	ck_assert_int_eq(fsv_commit(v), 0);
	fs_volume_info info;
	fsv_info(v, &info);
	ck_assert_uint_eq(info.version, 1);
	ck_assert_int_eq(fsv_close(v), 0);

	v = open_vol();
	fsv_info(v, &info);
	ck_assert_uint_eq(info.version, 1);
	ck_assert_int_eq(fsv_lookup(v, FS_ROOT_INO, "sub", &a), 0);
	ck_assert_int_eq(fsv_lookup(v, a.ino, "data", &a), 0);
	ck_assert_uint_eq(a.size, n);
	memset(back, 0, n);
	ck_assert_int_eq(fsv_read(v, a.ino, back, n + 100, 0), (ssize_t)n);
	ck_assert_mem_eq(buf, back, n);
	/* Overwrite the middle, across a chunk boundary, then reopen. */
	fill(buf + 4000, 200, 99);
	ck_assert_int_eq(fsv_write(v, a.ino, buf + 4000, 200, 4000), 200);
	ck_assert_int_eq(fsv_close(v), 0);
	v = open_vol();
	ck_assert_int_eq(fsv_lookup(v, FS_ROOT_INO, "sub", &a), 0);
	ck_assert_int_eq(fsv_lookup(v, a.ino, "data", &a), 0);
	ck_assert_int_eq(fsv_read(v, a.ino, back, n, 0), (ssize_t)n);
	ck_assert_mem_eq(buf, back, n);
	fsv_close(v);
	free(buf);
	free(back);
}
END_TEST

START_TEST(holes_truncate_punch)
{
	fs_volume *v = new_vol();
	uint64_t f = mkfile(v, FS_ROOT_INO, "sparse");
	uint8_t buf[100], back[5000];
	memset(buf, 'x', sizeof(buf));
	uint64_t far = (uint64_t)5 << 30; /* beyond 4 GiB */
	ck_assert_int_eq(fsv_write(v, f, buf, 100, far), 100);
	fs_attr a;
	ck_assert_int_eq(fsv_getattr(v, f, &a), 0);
	ck_assert_uint_eq(a.size, far + 100);
	ck_assert_uint_le(a.blocks, 8); /* a hole stays a hole */
	ck_assert_int_eq(fsv_read(v, f, back, 4096, 4096 * 10), 4096);
	for (int i = 0; i < 4096; i++)
		ck_assert_int_eq(back[i], 0);
	ck_assert_int_eq(fsv_commit(v), 0);
	/* Shrink into the middle of a chunk, grow again: the cut bytes read as zeros. */
	ck_assert_int_eq(fsv_write(v, f, buf, 100, 0), 100);
	fs_attr in = { .size = 50 };
	ck_assert_int_eq(fsv_setattr(v, f, &in, FS_SET_SIZE, &a), 0);
	in.size = 200;
	ck_assert_int_eq(fsv_setattr(v, f, &in, FS_SET_SIZE, &a), 0);
	ck_assert_int_eq(fsv_read(v, f, back, 300, 0), 200);
	for (int i = 0; i < 200; i++)
		ck_assert_int_eq(back[i], i < 50 ? 'x' : 0);
	/* Punch a hole in the middle of a chunk. */
	ck_assert_int_eq(fsv_fallocate(v, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 10, 20), 0);
	ck_assert_int_eq(fsv_read(v, f, back, 60, 0), 60);
	for (int i = 0; i < 60; i++)
		ck_assert_int_eq(back[i], (i < 50 && (i < 10 || i >= 30)) ? 'x' : 0);
	ck_assert_int_eq(fsv_close(v), 0);
	v = open_vol();
	ck_assert_int_eq(fsv_read(v, f, back, 60, 0), 60);
	for (int i = 0; i < 60; i++)
		ck_assert_int_eq(back[i], (i < 50 && (i < 10 || i >= 30)) ? 'x' : 0);
	fsv_close(v);
}
END_TEST

struct names {
	char got[64][64];
	int n;
};

static int collect(void *ctx, const char *name, uint64_t ino, uint32_t mode, uint64_t next)
{
	(void)ino;
	(void)mode;
	(void)next;
	struct names *c = ctx;
	if (c->n < 64)
		snprintf(c->got[c->n++], 64, "%s", name);
	return 0;
}

START_TEST(namespace_ops)
{
	fs_volume *v = new_vol();
	fs_attr a, b;
	uint64_t f = mkfile(v, FS_ROOT_INO, "a");
	ck_assert_int_eq(fsv_mknod(v, FS_ROOT_INO, "a", S_IFREG | 0644, 0, 0, 0, &a), -EEXIST);
	ck_assert_int_eq(fsv_link(v, f, FS_ROOT_INO, "hard", &a), 0);
	ck_assert_uint_eq(a.nlink, 2);
	ck_assert_int_eq(fsv_symlink(v, FS_ROOT_INO, "sym", "a", 0, 0, &a), 0);
	char t[16];
	ck_assert_int_eq(fsv_readlink(v, a.ino, t, sizeof(t)), 1);
	ck_assert_int_eq(t[0], 'a');
	uint64_t d = mkdir_ok(v, FS_ROOT_INO, "d", 0700);
	ck_assert_int_eq(fsv_rename(v, FS_ROOT_INO, "a", d, "moved", 0), 0);
	ck_assert_int_eq(fsv_lookup(v, FS_ROOT_INO, "a", &a), -ENOENT);
	ck_assert_int_eq(fsv_lookup(v, d, "moved", &a), 0);
	ck_assert_uint_eq(a.ino, f);
	/* A directory cannot move under itself. */
	ck_assert_int_eq(fsv_mkdir(v, d, "inner", 0700, 0, 0, &a), 0);
	ck_assert_int_eq(fsv_rename(v, FS_ROOT_INO, "d", a.ino, "loop", 0), -EINVAL);
	ck_assert_int_eq(fsv_rmdir(v, FS_ROOT_INO, "d"), -ENOTEMPTY);
	/* Exchange and noreplace. */
	ck_assert_int_eq(fsv_rename(v, FS_ROOT_INO, "hard", FS_ROOT_INO, "sym", RENAME_NOREPLACE), -EEXIST);
	ck_assert_int_eq(fsv_rename(v, FS_ROOT_INO, "hard", FS_ROOT_INO, "sym", RENAME_EXCHANGE), 0);
	ck_assert_int_eq(fsv_lookup(v, FS_ROOT_INO, "sym", &b), 0);
	ck_assert_uint_eq(b.ino, f);
	ck_assert_int_eq(fsv_lookup(v, FS_ROOT_INO, "hard", &b), 0);
	ck_assert(S_ISLNK(b.mode));
	/* xattrs */
	ck_assert_int_eq(fsv_setxattr(v, f, "user.k", "val", 3, 0), 0);
	ck_assert_int_eq(fsv_setxattr(v, f, "user.k", "v", 1, XATTR_CREATE), -EEXIST);
	char xb[16];
	ck_assert_int_eq(fsv_getxattr(v, f, "user.k", xb, sizeof(xb)), 3);
	ck_assert_int_eq(fsv_commit(v), 0);
	fsv_close(v);
	v = open_vol();
	struct names c = { .n = 0 };
	ck_assert_int_eq(fsv_readdir(v, FS_ROOT_INO, 0, collect, &c), 0);
	ck_assert_int_eq(c.n, 5); /* . .. d hard sym */
	ck_assert_int_eq(fsv_getxattr(v, f, "user.k", xb, sizeof(xb)), 3);
	ck_assert_mem_eq(xb, "val", 3);
	ck_assert_int_eq(fsv_unlink(v, FS_ROOT_INO, "sym"), 0);
	ck_assert_int_eq(fsv_lookup(v, d, "moved", &a), 0);
	ck_assert_uint_eq(a.nlink, 1);
	fsv_close(v);
}
END_TEST

START_TEST(removed_dir_gains_no_entry)
{
	/* A directory removed while the kernel still holds it (a process's cwd) takes no new entry by any
	 * call: create, link and rename into it are -ENOENT, as Linux answers. */
	fs_volume *v = new_vol();
	fs_attr a;
	uint64_t f = mkfile(v, FS_ROOT_INO, "f");
	uint64_t gone = mkdir_ok(v, FS_ROOT_INO, "gone", 0700);
	ck_assert_int_eq(fsv_rmdir(v, FS_ROOT_INO, "gone"), 0);
	ck_assert_int_eq(fsv_mknod(v, gone, "x", S_IFREG | 0644, 0, 0, 0, &a), -ENOENT);
	ck_assert_int_eq(fsv_link(v, f, gone, "x", &a), -ENOENT);
	ck_assert_int_eq(fsv_rename(v, FS_ROOT_INO, "f", gone, "x", 0), -ENOENT);
	/* Nothing moved: f is where it was, with one link. */
	ck_assert_int_eq(fsv_lookup(v, FS_ROOT_INO, "f", &a), 0);
	ck_assert_uint_eq(a.ino, f);
	ck_assert_uint_eq(a.nlink, 1);
	fsv_close(v);
}
END_TEST

START_TEST(tampered_chunk_reads_eio)
{
	fs_volume *v = new_vol();
	uint64_t f = mkfile(v, FS_ROOT_INO, "num");
	ck_assert_int_eq(fsv_write(v, f, "41", 2, 0), 2);
	fsv_close(v);
	/* Flip a byte of the only pack file. */
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "f=$(find '%s/d' -type f | head -1); printf '\\x99' | dd of=\"$f\" bs=1 seek=0 conv=notrunc status=none", dir);
	ck_assert_int_eq(system(cmd), 0);
	v = open_vol();
	char b[8];
	ck_assert_int_eq(fsv_read(v, f, b, 2, 0), -EIO);
	fs_volume_info info;
	fsv_info(v, &info);
	ck_assert_int_eq(info.failed, 1);
	fs_attr a;
	ck_assert_int_eq(fsv_mknod(v, FS_ROOT_INO, "new", S_IFREG | 0644, 0, 0, 0, &a), -EROFS);
	fsv_close(v);
}
END_TEST

START_TEST(rollback_and_second_writer)
{
	create_vol();
	char cmd[2048];
	fs_volume *v = open_vol();
	uint64_t f = mkfile(v, FS_ROOT_INO, "num");
	ck_assert_int_eq(fsv_write(v, f, "1", 1, 0), 1);
	ck_assert_int_eq(fsv_commit(v), 0);
	/* A second writer is refused while the first has it open. */
	fs_volume_opts o = opts();
	fs_volume *w = NULL;
	char err[256];
	ck_assert_int_eq(fsv_open(&o, &w, err, sizeof(err)), FS_ST_BUSY);
	fsv_close(v);
	snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s/snap'", dir, tmp);
	ck_assert_int_eq(system(cmd), 0);
	v = open_vol();
	ck_assert_int_eq(fsv_write(v, f, "2", 1, 0), 1);
	fsv_close(v);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -a '%s/snap' '%s'", dir, tmp, dir);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(fsv_open(&o, &w, err, sizeof(err)), FS_ST_ROLLBACK);
	ck_assert_msg(strstr(err, "rollback detected: volume version 1 < trusted version 2"), "%s", err);
}
END_TEST

START_TEST(wrong_key_and_anchor)
{
	create_vol();
	fs_volume_opts o = opts();
	uint8_t other[32];
	memset(other, 0xee, 32);
	o.key = other;
	fs_volume *v = NULL;
	char err[256];
	ck_assert_int_eq(fsv_open(&o, &v, err, sizeof(err)), FS_ST_WRONG_KEY);
	o = opts();
	char t2[600];
	snprintf(t2, sizeof(t2), "file:%s/other-trust.db", tmp);
	o.trust_uri = t2;
	ck_assert_int_eq(fsv_open(&o, &v, err, sizeof(err)), FS_ST_ANCHOR);
	/* init into a non-empty directory is refused and touches nothing. */
	o = opts();
	ck_assert_int_eq(fsv_create(&o, err, sizeof(err)), FS_ST_IO);
	v = open_vol();
	fsv_close(v);
}
END_TEST

START_TEST(passphrase_volume)
{
	char pf[600], bad[600], kf[600];
	snprintf(pf, sizeof(pf), "%s/pass", tmp);
	snprintf(bad, sizeof(bad), "%s/bad", tmp);
	snprintf(kf, sizeof(kf), "%s/key", tmp);
	FILE *f = fopen(pf, "w");
	fputs("correct horse battery staple\n", f);
	fclose(f);
	f = fopen(bad, "w");
	fputs("correct horse battery stapler\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(pf, 0600) | chmod(bad, 0600), 0);
	ck_assert_int_eq(fs_key_generate_file(kf), 0);
	fs_volume_opts o = { .dir = dir, .passphrase_file = pf, .trust_uri = trust, .kdf_ops = 1, .kdf_mem = 8192 * 1024 };
	char err[256] = "";
	ck_assert_msg(fsv_create(&o, err, sizeof(err)) == 0, "%s", err);
	fs_volume *v = NULL;
	ck_assert_msg(fsv_open(&o, &v, err, sizeof(err)) == 0, "%s", err);
	uint64_t fi = mkfile(v, FS_ROOT_INO, "secret");
	ck_assert_int_eq(fsv_write(v, fi, "x", 1, 0), 1);
	ck_assert_int_eq(fsv_close(v), 0);
	o.passphrase_file = bad;
	ck_assert_int_eq(fsv_open(&o, &v, err, sizeof(err)), FS_ST_WRONG_KEY);
	ck_assert_msg(strstr(err, "wrong passphrase"), "%s", err);
	o.passphrase_file = NULL;
	o.key_file = kf;
	ck_assert_int_eq(fsv_open(&o, &v, err, sizeof(err)), FS_ST_WRONG_KEY);
	o.key_file = NULL;
	o.passphrase_file = pf;
	ck_assert_msg(fsv_open(&o, &v, err, sizeof(err)) == 0, "%s", err);
	char b;
	ck_assert_int_eq(fsv_read(v, fi, &b, 1, 0), 1);
	ck_assert_int_eq(b, 'x');
	fsv_close(v);
}
END_TEST

/* A change of key rewraps the same master key: the data stays readable, the old key no longer opens. */
START_TEST(rekey_keeps_data)
{
	fs_volume *v = new_vol();
	uint64_t fi = mkfile(v, FS_ROOT_INO, "kept");
	ck_assert_int_eq(fsv_write(v, fi, "abc", 3, 0), 3);
	ck_assert_int_eq(fsv_close(v), 0);
	fs_volume_opts o = opts(), p = { .passphrase = "new words", .passphrase_len = 9, .kdf_ops = 1,
					 .kdf_mem = 8192 * 1024 };
	char err[256] = "";
	ck_assert_msg(fsv_rekey(&o, &p, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(fsv_open(&o, &v, err, sizeof(err)), FS_ST_WRONG_KEY);
	fs_volume_opts q = opts();
	q.key = NULL;
	q.passphrase = "old words";
	q.passphrase_len = 9;
	ck_assert_int_eq(fsv_open(&q, &v, err, sizeof(err)), FS_ST_WRONG_KEY);
	/* and on to a key file that wraps the key */
	uint8_t k2[32];
	memset(k2, 7, sizeof(k2));
	q.passphrase = "new words";
	fs_volume_opts n = { .key = k2 };
	ck_assert_msg(fsv_rekey(&q, &n, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(fsv_open(&q, &v, err, sizeof(err)), FS_ST_WRONG_KEY);
	q.passphrase = NULL;
	q.key = k2;
	ck_assert_msg(fsv_open(&q, &v, err, sizeof(err)) == 0, "%s", err);
	char b[3];
	ck_assert_int_eq(fsv_read(v, fi, b, 3, 0), 3);
	ck_assert_mem_eq(b, "abc", 3);
	fsv_close(v);
	/* a wrong current key changes nothing */
	ck_assert_int_eq(fsv_rekey(&o, &p, err, sizeof(err)), FS_ST_WRONG_KEY);
	ck_assert_msg(fsv_open(&q, &v, err, sizeof(err)) == 0, "%s", err);
	fsv_close(v);
}
END_TEST

static void count_finding(void *ctx, const fs_finding *f)
{
	fprintf(stderr, "finding: %s\n", f->message);
	(*(int *)ctx)++;
}

/* A directory emptied and removed after its entries were committed, and forgotten by the kernel before
 * the next commit, leaves no entry rows behind (verify finds nothing). */
START_TEST(removed_directory_leaves_no_rows)
{
	fs_volume *v = new_vol();
	fs_attr a;
	uint64_t d = mkdir_ok(v, FS_ROOT_INO, "d", 0755);
	uint64_t f = mkfile(v, d, "f");
	uint64_t g = mkfile(v, FS_ROOT_INO, "g");
	ck_assert_int_eq(fsv_link(v, g, d, "b", &a), 0);
	ck_assert_int_eq(fsv_commit(v), 0);
	ck_assert_int_eq(fsv_unlink(v, d, "f"), 0);
	ck_assert_int_eq(fsv_unlink(v, d, "b"), 0);
	ck_assert_int_eq(fsv_rmdir(v, FS_ROOT_INO, "d"), 0);
	fsv_forget(v, f, 1);
	fsv_forget(v, d, 1);
	ck_assert_int_eq(fsv_close(v), 0);
	fs_volume_opts o = opts();
	fs_verify_result res;
	int n = 0;
	ck_assert_int_eq(fsv_verify(&o, NULL, count_finding, &n, &res), 0);
	ck_assert_int_eq(n, 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("volume");
	/* setup makes each test's directory inside the case's scratch directory, which the runner removes
	 * even when a failing test skips teardown. */
	TCase *t = TEST_CASE(s, "api", "unit-volume", 60, roundtrip_across_reopen, holes_truncate_punch,
			     namespace_ops, removed_dir_gains_no_entry, tampered_chunk_reads_eio,
			     rollback_and_second_writer, wrong_key_and_anchor, passphrase_volume,
			     removed_directory_leaves_no_rows, rekey_keeps_data);
	tcase_add_checked_fixture(t, setup, teardown);
	return s;
}

TEST_MAIN(suite)
