/* The progress line (meta/common/progress.h): nothing on a pipe unless forced; forced, plain lines at
 * most once a second; on a terminal, redrawn in place at most four times a second and cleared at the end;
 * the counts, totals, rate and time left in the line. */
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>

#include "meta/common/progress.h"
#include "testutil.h"

/* Everything readable on fd now (it is non-blocking), NUL-terminated, malloc'd. */
static char *drain(int fd)
{
	size_t n = 0, cap = 1 << 16;
	char *b = malloc(cap + 1);
	ck_assert_ptr_nonnull(b);
	ssize_t r;
	while (n < cap && (r = read(fd, b + n, cap - n)) > 0)
		n += (size_t)r;
	b[n] = 0;
	return b;
}

static int count(const char *s, const char *what)
{
	int n = 0;
	for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reports 1000 steady steps over about 0.6 s of 3000 bytes total. */
static double run(fs_progress *p)
{
	double t0 = now();
	for (int i = 1; i <= 1000; i++) {
		fs_progress_report(p, (uint64_t)i, 1000, (uint64_t)i * 3, 3000);
		struct timespec d = { 0, 600000 };
		nanosleep(&d, NULL);
	}
	return now() - t0;
}

START_TEST(nothing_on_a_pipe_unless_forced)
{
	int pfd[2];
	ck_assert_int_eq(pipe2(pfd, O_NONBLOCK), 0);
	ck_assert_ptr_null(fs_progress_new(FS_PROGRESS_AUTO, pfd[1], "verify", "chunks"));
	ck_assert_ptr_null(fs_progress_new(FS_PROGRESS_OFF, pfd[1], "verify", "chunks"));
	/* NULL is accepted everywhere */
	fs_progress_step(NULL, "x");
	fs_progress_report(NULL, 1, 2, 3, 4);
	fs_progress_clear(NULL);
	fs_progress_end(NULL);
	fs_progress_cancel(NULL);
	char *out = drain(pfd[0]);
	ck_assert_str_eq(out, "");
	free(out);
	close(pfd[0]);
	close(pfd[1]);
}
END_TEST

START_TEST(forced_on_a_pipe_plain_lines_once_a_second)
{
	int pfd[2];
	ck_assert_int_eq(pipe2(pfd, O_NONBLOCK), 0);
	fs_progress *p = fs_progress_new(FS_PROGRESS_FORCE, pfd[1], "fspf addf", "entries");
	ck_assert_ptr_nonnull(p);
	double secs = run(p);
	fs_progress_end(p);
	char *out = drain(pfd[0]);
	ck_assert_ptr_null(strchr(out, '\r'));
	ck_assert_ptr_null(strchr(out, '\033'));
	int lines = count(out, "\n");
	ck_assert_int_ge(lines, 2); /* the first report and the final counts */
	ck_assert_int_le(lines, (int)secs + 2);
	ck_assert_msg(strstr(out, "fspf addf: 1/1000 entries, 3 B/2.9 KiB, "), "%s", out);
	ck_assert_msg(strstr(out, "fspf addf: 1000/1000 entries, 2.9 KiB/2.9 KiB, ") && strstr(out, " 0:00 left\n"),
		      "%s", out);
	free(out);
	close(pfd[0]);
	close(pfd[1]);
}
END_TEST

START_TEST(cancel_prints_no_final_line)
{
	int pfd[2];
	ck_assert_int_eq(pipe2(pfd, O_NONBLOCK), 0);
	fs_progress *p = fs_progress_new(FS_PROGRESS_FORCE, pfd[1], "image", "entries");
	fs_progress_report(p, 1, 0, 10, 0);
	fs_progress_report(p, 2, 0, 20, 0); /* within the second: not drawn */
	fs_progress_cancel(p);
	char *out = drain(pfd[0]);
	ck_assert_int_eq(count(out, "\n"), 1);
	ck_assert_msg(!strncmp(out, "image: 1 entries, 10 B, ", 24) && strstr(out, "B/s\n") && !strstr(out, "left"),
		      "%s", out);
	free(out);
	close(pfd[0]);
	close(pfd[1]);
}
END_TEST

START_TEST(terminal_redrawn_in_place_and_cleared)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	ck_assert_int_ge(m, 0);
	ck_assert_int_eq(grantpt(m), 0);
	ck_assert_int_eq(unlockpt(m), 0);
	int s = open(ptsname(m), O_RDWR | O_NOCTTY);
	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(fcntl(m, F_SETFL, O_NONBLOCK), 0);
	fs_progress *p = fs_progress_new(FS_PROGRESS_AUTO, s, "verify", "chunks");
	ck_assert_ptr_nonnull(p);
	double secs = run(p);
	fs_progress_clear(p); /* a finding: the line goes, and comes back with the next report */
	ck_assert_int_eq(write(s, "finding\n", 8), 8);
	fs_progress_report(p, 1000, 1000, 3000, 3000);
	fs_progress_end(p);
	struct pollfd pf = { m, POLLIN, 0 };
	ck_assert_int_eq(poll(&pf, 1, 1000), 1);
	char *out = drain(m);
	int draws = count(out, "\r\033[Kverify: ");
	ck_assert_int_ge(draws, 2);
	ck_assert_int_le(draws, (int)(secs * 4) + 3);
	ck_assert_msg(strstr(out, "\r\033[Kfinding"), "the line is cleared before other output: %s", out);
	size_t n = strlen(out);
	ck_assert_msg(n >= 4 && !strcmp(out + n - 4, "\r\033[K"), "cleared at the end: %s", out);
	ck_assert_msg(strstr(out, "verify: 1000/1000 chunks, 2.9 KiB/2.9 KiB, "), "%s", out);
	free(out);
	close(s);
	close(m);
}
END_TEST

static Suite *progress_suite(void)
{
	Suite *s = suite_create("progress");
	TCase *tc = tcase_create("progress");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, nothing_on_a_pipe_unless_forced);
	tcase_add_test(tc, forced_on_a_pipe_plain_lines_once_a_second);
	tcase_add_test(tc, cancel_prints_no_final_line);
	tcase_add_test(tc, terminal_redrawn_in_place_and_cleared);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(progress_suite)
