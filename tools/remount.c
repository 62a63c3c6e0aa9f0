/* mount -o remount: see tools/remount.h. The kernel passes a remount of a FUSE mount to no one but the
 * mount itself, so the daemon learns of it here: going read-only, the kernel first writes back what it
 * holds and refuses further changes, then the daemon commits; going read-write, the daemon agrees first. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

#include "fs/fuse/control.h"
#include "fs/fuse/daemon.h"
#include "meta/common/status.h"
#include "tools/remount.h"
#include "tools/rundir.h"

static const struct {
	const char *name;
	unsigned long on, off;
} flags[] = {
	{ "nosuid", MS_NOSUID, 0 }, { "suid", 0, MS_NOSUID },       { "nodev", MS_NODEV, 0 },
	{ "dev", 0, MS_NODEV },     { "noexec", MS_NOEXEC, 0 },     { "exec", 0, MS_NOEXEC },
	{ "sync", MS_SYNCHRONOUS, 0 }, { "async", 0, MS_SYNCHRONOUS }, { "dirsync", MS_DIRSYNC, 0 },
	{ "nodiratime", MS_NODIRATIME, 0 }, { "diratime", 0, MS_NODIRATIME },
};

int remount_flag(const char *o, unsigned long *on, unsigned long *off, int *atime)
{
	/* As Linux: atime and norelatime mean relatime unless strictatime is given. */
	if (!strcmp(o, "relatime") || !strcmp(o, "atime") || !strcmp(o, "norelatime") || !strcmp(o, "nostrictatime")) {
		*atime = FS_ATIME_RELATIME;
		return 1;
	}
	if (!strcmp(o, "strictatime") || !strcmp(o, "noatime")) {
		*atime = o[0] == 's' ? FS_ATIME_STRICT : FS_ATIME_NEVER;
		return 1;
	}
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (!strcmp(o, flags[i].name)) {
			*on = (*on & ~flags[i].off) | flags[i].on;
			*off = (*off & ~flags[i].on) | flags[i].off;
			return 1;
		}
	return 0;
}

static int is_fshield_mount(const char *mnt)
{
	FILE *f = fopen("/proc/self/mounts", "r");
	char dev[PATH_MAX], dir[PATH_MAX], type[64];
	int found = 0;
	if (!f)
		return 0;
	while (fscanf(f, "%4095s %4095s %63s %*[^\n]", dev, dir, type) == 3)
		if (!strcmp(dir, mnt))
			found = !strcmp(type, "fuse.fshield");
	fclose(f);
	return found;
}

/* The mount's flags now, as mount(2) takes them. */
static unsigned long current_flags(const struct statvfs *st)
{
	static const struct {
		unsigned long st, ms;
	} map[] = {
		{ ST_RDONLY, MS_RDONLY },         { ST_NOSUID, MS_NOSUID },       { ST_NODEV, MS_NODEV },
		{ ST_NOEXEC, MS_NOEXEC },         { ST_SYNCHRONOUS, MS_SYNCHRONOUS }, { ST_NOATIME, MS_NOATIME },
		{ ST_NODIRATIME, MS_NODIRATIME }, { ST_RELATIME, MS_RELATIME },
	};
	unsigned long f = 0;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (st->f_flag & map[i].st)
			f |= map[i].ms;
	if (!(f & (MS_NOATIME | MS_RELATIME)))
		f |= MS_STRICTATIME;
	return f;
}

static int tell(const char *ctl, const char *mnt, const char *req)
{
	int rc = fsd_control_send(ctl, req);
	if (rc == -ENOENT || rc == -ECONNREFUSED)
		fprintf(stderr, "fshield mount: %s: the daemon serving it does not answer (%s)\n", mnt, strerror(-rc));
	else if (rc == -EROFS && !strcmp(req, "rw"))
		fprintf(stderr, "fshield mount: %s: the volume is read-only (mounted with -o ro, or after a failure): "
				"unmount it and mount it again read-write\n", mnt);
	else if (rc < 0 && !strcmp(req, "ro"))
		fprintf(stderr, "fshield mount: %s: remounted read-only, but the commit failed: %s\n", mnt,
			strerror(-rc));
	else if (rc < 0)
		fprintf(stderr, "fshield mount: %s: the daemon refused '%s': %s\n", mnt, req, strerror(-rc));
	return rc;
}

int remount(const char *mountpoint, int ro, int atime, unsigned long on, unsigned long off)
{
	char mnt[PATH_MAX], rd[4096], state[PATH_MAX], ctl[PATH_MAX];
	struct statvfs st;
	if (!realpath(mountpoint, mnt)) {
		fprintf(stderr, "fshield mount: %s: %s\n", mountpoint, strerror(errno));
		return FS_ST_IO;
	}
	if (!is_fshield_mount(mnt)) {
		fprintf(stderr, "fshield mount: %s: not an fshield mount, nothing to remount\n", mnt);
		return FS_ST_USAGE;
	}
	if (!run_dir(rd, sizeof(rd)) || fsd_state_path(rd, mnt, state, sizeof(state), 0) != 0 ||
	    fsd_control_path(state, ctl, sizeof(ctl)) != 0) {
		fprintf(stderr, "fshield mount: %s: the run directory name is too long\n", mnt);
		return FS_ST_USAGE;
	}
	if (statvfs(mnt, &st) != 0) {
		fprintf(stderr, "fshield mount: %s: %s\n", mnt, strerror(errno));
		return FS_ST_IO;
	}
	unsigned long cur = current_flags(&st), want = (cur & ~off) | on;
	int was_ro = (cur & MS_RDONLY) != 0, want_ro = ro < 0 ? was_ro : ro;
	want = want_ro ? want | MS_RDONLY : want & ~MS_RDONLY;
	if (atime >= 0) {
		want &= ~(MS_NOATIME | MS_RELATIME | MS_STRICTATIME);
		want |= atime == FS_ATIME_NEVER ? MS_NOATIME : atime == FS_ATIME_STRICT ? MS_STRICTATIME : MS_RELATIME;
		char req[32];
		snprintf(req, sizeof(req), "atime %d", atime);
		if (tell(ctl, mnt, req) < 0)
			return FS_ST_IO;
	}
	if (!want_ro && tell(ctl, mnt, "rw") < 0)
		return FS_ST_IO;
	if (mount(NULL, mnt, NULL, MS_REMOUNT | want, NULL) != 0) {
		int e = errno;
		fprintf(stderr, "fshield mount: %s: remount failed: %s%s\n", mnt, strerror(e),
			e == EPERM ? " (remounting takes root: fusermount3 cannot remount)"
			: e == EBUSY && want_ro ? " (a file is open for writing)" : "");
		if (!want_ro && was_ro)
			fsd_control_send(ctl, "ro"); /* the mount stays read-only: so does the daemon */
		return FS_ST_IO;
	}
	/* A mount that was and stays read-only needs nothing of its daemon (an fspf image has no channel). */
	if (want_ro && was_ro && fsd_control_send(ctl, "ro") == -ENOENT)
		return FS_OK;
	if (want_ro && tell(ctl, mnt, "ro") < 0)
		return FS_ST_IO;
	return FS_OK;
}
