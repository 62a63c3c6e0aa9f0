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
