/* The resolver for paths under the backing directory: a symbolic link in any component is refused,
 * nothing outside the directory is created, changed or removed, and ordinary paths work, both with
 * openat2 and with the component walk used where the kernel has no openat2 (each test runs twice). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meta/common/beneath.h"
#include "testutil.h"

static char *top;
static int back = -1, out = -1; /* the backing directory, and a directory outside it */

static void setup(int walk)
{
	fs_beneath_force_walk(walk);
	top = test_tmpdir("beneath");
	char p[600];
	snprintf(p, sizeof(p), "%s/back", top);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	back = open(p, O_RDONLY | O_DIRECTORY);
	snprintf(p, sizeof(p), "%s/outside", top);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	out = open(p, O_RDONLY | O_DIRECTORY);
	ck_assert(back >= 0 && out >= 0);
	/* Something outside a link could point a delete or rename at. */
	int fd = openat(out, "victim", O_WRONLY | O_CREAT | O_EXCL, 0600);
	ck_assert(fd >= 0 && write(fd, "keep", 4) == 4);
	close(fd);
}

static void teardown(void)
{
	close(back);
	close(out);
	test_rmrf(top);
	free(top);
	fs_beneath_force_walk(0);
}

/* The outside directory holds exactly the victim, unchanged. */
static void outside_untouched(void)
{
	char buf[8] = "";
	int fd = openat(out, "victim", O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), 4);
	close(fd);
	ck_assert(!memcmp(buf, "keep", 4));
	int n = 0;
	int d = dup(out);
	DIR *dir = fdopendir(d);
	struct dirent *e;
	while ((e = readdir(dir)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(dir);
	ck_assert_int_eq(n, 1);
}

static void link_out(const char *name, const char *target)
{
	char t[700];
	snprintf(t, sizeof(t), "%s/outside%s%s", top, *target ? "/" : "", target);
	ck_assert_int_eq(symlinkat(t, back, name), 0);
}

START_TEST(linked_data_dir_is_refused)
{
	setup(_i);
	link_out("d", "");
	ck_assert_int_eq(fs_beneath_mkdir(back, "d/01", 0700), -ELOOP);
	ck_assert_int_eq(fs_beneath_open(back, "d/01/f", O_RDWR | O_CREAT | O_EXCL, 0600), -ELOOP);
	ck_assert_int_eq(fs_beneath_open(back, "d/victim", O_RDWR, 0), -ELOOP);
	ck_assert_int_eq(fs_beneath_open(back, "d", O_RDONLY | O_DIRECTORY, 0), -ELOOP);
	ck_assert_int_eq(fs_beneath_unlink(back, "d/victim", 0), -ELOOP);
	ck_assert_int_eq(fs_beneath_rename(back, "d/victim", "moved"), -ELOOP);
	struct stat st;
	ck_assert_int_eq(fs_beneath_stat(back, "d/victim", &st), -ELOOP);
	outside_untouched();
	teardown();
}
END_TEST

START_TEST(linked_subdir_is_refused)
{
	setup(_i);
	ck_assert_int_eq(fs_beneath_mkdir(back, "d", 0700), 0);
	int d = openat(back, "d", O_RDONLY | O_DIRECTORY);
	char t[700];
	snprintf(t, sizeof(t), "%s/outside", top);
	ck_assert_int_eq(symlinkat(t, d, "01"), 0);
	close(d);
	ck_assert_int_eq(fs_beneath_mkdir(back, "d/01", 0700), -EEXIST);
	ck_assert_int_eq(fs_beneath_open(back, "d/01/f", O_RDWR | O_CREAT, 0600), -ELOOP);
	ck_assert_int_eq(fs_beneath_open(back, "d/01/victim", O_RDWR | O_TRUNC, 0), -ELOOP);
	ck_assert_int_eq(fs_beneath_unlink(back, "d/01/victim", 0), -ELOOP);
	ck_assert_int_eq(fs_beneath_rename(back, "d/01/victim", "d/x"), -ELOOP);
	ck_assert_int_eq(fs_beneath_rename(back, "d/x", "d/01/victim"), -ELOOP);
	outside_untouched();
	teardown();
}
END_TEST

START_TEST(linked_file_is_refused)
{
	setup(_i);
	link_out("meta.db", "victim");
	ck_assert_int_eq(fs_beneath_open(back, "meta.db", O_RDWR, 0), -ELOOP);
	ck_assert_int_eq(fs_beneath_open(back, "meta.db", O_RDWR | O_CREAT, 0600), -ELOOP);
	ck_assert_int_eq(fs_beneath_open(back, "meta.db", O_RDWR | O_CREAT | O_EXCL, 0600), -EEXIST);
	ck_assert_int_eq(fs_beneath_open(back, "meta.db", O_PATH, 0), -ELOOP);
	ck_assert_int_eq(fs_beneath_check_plain(back, "meta.db"), -ELOOP);
	struct stat st;
	ck_assert_int_eq(fs_beneath_stat(back, "meta.db", &st), 0);
	ck_assert(S_ISLNK(st.st_mode));
	/* Removing or renaming the link acts on the link, never on what it names. */
	ck_assert_int_eq(fs_beneath_rename(back, "meta.db", "old"), 0);
	ck_assert_int_eq(fs_beneath_unlink(back, "old", 0), 0);
	outside_untouched();
	teardown();
}
END_TEST

START_TEST(other_names_and_types_are_not_plain)
{
	setup(_i);
	char t[700];
	snprintf(t, sizeof(t), "%s/outside/victim", top);
	ck_assert_int_eq(linkat(AT_FDCWD, t, back, "hard", 0), 0);
	ck_assert_int_eq(fs_beneath_check_plain(back, "hard"), -EMLINK);
	ck_assert_int_eq(mkfifoat(back, "fifo", 0600), 0);
	ck_assert_int_eq(fs_beneath_check_plain(back, "fifo"), -EINVAL);
	ck_assert_int_eq(fs_beneath_check_plain(back, "none"), -ENOENT);
	ck_assert_int_eq(unlinkat(back, "hard", 0), 0);
	outside_untouched();
	teardown();
}
END_TEST

START_TEST(paths_must_be_plain_names)
{
	setup(_i);
	char t[700];
	snprintf(t, sizeof(t), "%s/outside/victim", top);
	ck_assert_int_eq(fs_beneath_open(back, t, O_RDWR, 0), -EINVAL);
	ck_assert_int_eq(fs_beneath_open(back, "../outside/victim", O_RDWR, 0), -EXDEV);
	ck_assert_int_eq(fs_beneath_unlink(back, "../outside/victim", 0), -EXDEV);
	ck_assert_int_eq(fs_beneath_mkdir(back, "x/../../outside/y", 0700), -EXDEV);
	ck_assert_int_eq(fs_beneath_open(back, "", O_RDONLY, 0), -EINVAL);
	ck_assert_int_eq(fs_beneath_open(back, "a//b", O_RDONLY, 0), -EINVAL);
	ck_assert_int_eq(fs_beneath_open(back, "./a", O_RDONLY, 0), -EINVAL);
	ck_assert_int_eq(fs_beneath_open(back, "a/", O_RDONLY, 0), -EINVAL);
	outside_untouched();
	teardown();
}
END_TEST

START_TEST(plain_paths_work)
{
	setup(_i);
	mode_t old = umask(022);
	ck_assert_int_eq(fs_beneath_mkdir(back, "d", 0700), 0);
	ck_assert_int_eq(fs_beneath_mkdir(back, "d/01", 0700), 0);
	int fd = fs_beneath_open(back, "d/01/f", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "x", 1), 1);
	close(fd);
	struct stat st;
	ck_assert_int_eq(fs_beneath_stat(back, "d/01/f", &st), 0);
	ck_assert(S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600 && st.st_size == 1);
	ck_assert_int_eq(fs_beneath_stat(back, "d/01", &st), 0);
	ck_assert(S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
	ck_assert_int_eq(fs_beneath_check_plain(back, "d/01/f"), 0);
	ck_assert_int_eq(fs_beneath_rename(back, "d/01/f", "g"), 0);
	fd = fs_beneath_open(back, "g", O_RDONLY, 0);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(fs_beneath_unlink(back, "g", 0), 0);
	ck_assert_int_eq(fs_beneath_unlink(back, "d/01", AT_REMOVEDIR), 0);
	const char *last;
	int p = fs_beneath_parent(back, "top", &last);
	ck_assert_int_eq(p, back);
	ck_assert_str_eq(last, "top");
	umask(old);
	outside_untouched();
	teardown();
}
END_TEST

static Suite *beneath_suite(void)
{
	Suite *s = suite_create("beneath");
	TCase *tc = tcase_create("resolver");
	/* _i = 0: openat2; _i = 1: the component walk. */
	tcase_add_loop_test(tc, linked_data_dir_is_refused, 0, 2);
	tcase_add_loop_test(tc, linked_subdir_is_refused, 0, 2);
	tcase_add_loop_test(tc, linked_file_is_refused, 0, 2);
	tcase_add_loop_test(tc, other_names_and_types_are_not_plain, 0, 2);
	tcase_add_loop_test(tc, paths_must_be_plain_names, 0, 2);
	tcase_add_loop_test(tc, plain_paths_work, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(beneath_suite)
