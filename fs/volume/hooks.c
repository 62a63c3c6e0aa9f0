/* What tests replace: the clock of file times, named crash points in the commit protocol, the number
 * of chunk seals per file key, and failed syncs of chunk data (all only in test builds, FS_TEST_HOOKS). */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/volume/internal.h"

#ifdef FS_TEST_HOOKS
static void (*clock_override)(struct timespec *);

/* Tests that pin the bytes of a volume (golden vectors) need a fixed clock. */
void fs_test_set_clock(void (*fn)(struct timespec *))
{
	clock_override = fn;
}
#endif


void vol_now(struct timespec *ts)
{
#ifdef FS_TEST_HOOKS
	if (clock_override) {
		clock_override(ts);
		return;
	}
#endif
	clock_gettime(CLOCK_REALTIME, ts);
}

/* The chunk seals one file key may make: the bound of the volume's cipher; in test builds a lower one
 * from fs_volume_opts.seal_limit, so that a test can reach it. */
uint64_t vol_seal_limit(const fs_volume *v, const fs_volume_opts *o)
{
	uint64_t bound = fs_aead_max_seals(v->hdr.aead_alg);
#ifdef FS_TEST_HOOKS
	if (o->seal_limit && o->seal_limit < bound)
		return o->seal_limit;
#else
	(void)o;
#endif
	return bound;
}

/* In test builds, fs_volume_opts.crash_at = NAME makes this process kill itself at the named step of
 * the commit protocol, so tests can check recovery from each one. A release build has no crash points. */
void vol_crash_point(fs_volume *v, const char *name)
{
#ifndef FS_TEST_HOOKS
	(void)v, (void)name;
#else
	if (v->crash_at && strcmp(v->crash_at, name) == 0) {
		fs_log(LOG_WARNING, "crash point %s reached: killing this process", name);
		kill(getpid(), SIGKILL);
	}
#endif
}

/* fdatasync(fd) (how VOL_SYNC_DATA), fsync(fd) (VOL_SYNC_DIR) or syncfs(fd) (VOL_SYNC_FS), for chunk data and its directories. In test builds
 * FSHIELD_FAIL_SYNC=N makes the Nth fdatasync of a pack file fail with EIO, once, as Linux reports a writeback error to
 * one caller only. */
int vol_data_sync(int fd, int how)
{
#ifdef FS_TEST_HOOKS
	static long calls;
	const char *n = getenv("FSHIELD_FAIL_SYNC");
	if (n && how == VOL_SYNC_DATA && ++calls == atol(n)) {
		fs_log(LOG_WARNING, "test hook: sync number %ld fails with EIO", calls);
		errno = EIO;
		return -1;
	}
#endif
	return how == VOL_SYNC_FS ? syncfs(fd) : how == VOL_SYNC_DIR ? fsync(fd) : fdatasync(fd);
}
