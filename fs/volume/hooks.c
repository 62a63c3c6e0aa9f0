/* What tests replace: the clock of file times, and named crash points in the commit protocol (both only in
 * test builds, FS_TEST_HOOKS). */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
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
