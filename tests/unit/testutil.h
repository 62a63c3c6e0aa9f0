/* Shared scaffolding for the Check unit test runners: each test file defines its suite and calls
 * TEST_MAIN(suite_fn). Scratch directories are made under $TMPDIR and removed by the runner. */
#ifndef FS_TESTUTIL_H
#define FS_TESTUTIL_H
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/keys.h"

/* mkdtemp under $TMPDIR (or /tmp); the returned string is malloc'd. */
static inline char *test_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *p;
	if (asprintf(&p, "%s/fshield-%s-XXXXXX", base && *base ? base : "/tmp", tag) < 0 || !mkdtemp(p))
		abort();
	return p;
}

static inline void test_rmrf(const char *dir)
{
	char *cmd;
	if (asprintf(&cmd, "rm -rf '%s'", dir) < 0)
		abort();
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not remove %s\n", dir);
	free(cmd);
}

/* A per-runner scratch directory that becomes $TMPDIR for the tests (so whatever they make lands there),
 * removed with everything in it afterwards: use as an unchecked fixture. */
static char *test_scratch_base, *test_saved_tmpdir;
static inline void test_scratch_begin(const char *tag)
{
	const char *t = getenv("TMPDIR");
	test_saved_tmpdir = t ? strdup(t) : NULL;
	test_scratch_base = test_tmpdir(tag);
	setenv("TMPDIR", test_scratch_base, 1);
}
static inline void test_scratch_end(void)
{
	if (test_saved_tmpdir)
		setenv("TMPDIR", test_saved_tmpdir, 1);
	else
		unsetenv("TMPDIR");
	test_rmrf(test_scratch_base);
	free(test_scratch_base);
	free(test_saved_tmpdir);
	test_scratch_base = test_saved_tmpdir = NULL;
}

/* A test case whose tests run inside one scratch directory (tagged tag) that the runner itself, not the
 * test process, makes before the case and removes after it, so a failing test leaves nothing behind. */
static const char *test_scratch_tag;
static inline void test_scratch_setup(void)
{
	test_scratch_begin(test_scratch_tag);
}
static inline TCase *test_scratch_case(const char *name, const char *tag, int timeout)
{
	TCase *tc = tcase_create(name);
	test_scratch_tag = tag;
	tcase_set_timeout(tc, timeout);
	tcase_add_unchecked_fixture(tc, test_scratch_setup, test_scratch_end);
	return tc;
}

/* TEST_ADD(tc, test, ...): adds each named test (a START_TEST name) to tc, in order. */
static inline void test_add_all(TCase *tc, const TTest *const *tests)
{
	for (; *tests; tests++)
		tcase_add_test(tc, *tests);
}
#define TEST_ADD(tc, ...) test_add_all((tc), (const TTest *const[]){ __VA_ARGS__, NULL })

/* TEST_CASE(suite, name, tag, timeout, test, ...): a case of suite holding the named tests, run inside a
 * scratch directory tagged tag (NULL: none), with timeout seconds each (0: Check's default). Returns the
 * case, for loop tests and fixtures. */
static inline TCase *test_case_of(Suite *s, const char *name, const char *tag, int timeout, const TTest *const *tests)
{
	TCase *tc = tag ? test_scratch_case(name, tag, timeout) : tcase_create(name);
	if (!tag && timeout)
		tcase_set_timeout(tc, timeout);
	test_add_all(tc, tests);
	suite_add_tcase(s, tc);
	return tc;
}
#define TEST_CASE(s, name, tag, timeout, ...) \
	test_case_of((s), (name), (tag), (timeout), (const TTest *const[]){ __VA_ARGS__, NULL })

#define TEST_MAIN(suite_fn)                                                  \
	int main(void)                                                       \
	{                                                                    \
		if (fs_crypto_init() != 0)                                   \
			return 1;                                            \
		SRunner *sr = srunner_create(suite_fn());                    \
		srunner_run_all(sr, CK_NORMAL);                              \
		int failed = srunner_ntests_failed(sr);                      \
		srunner_free(sr);                                            \
		return failed ? 1 : 0;                                       \
	}
#endif
