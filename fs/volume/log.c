/* Integrity violations (fail closed: log, turn read-only, -EIO), and named crash points. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "fs/volume/internal.h"

/* The path of an inode in the volume, from the parent hints in its row and the names in loaded
 * directories; components that cannot be named without I/O show as #ino. */
int vol_path(fs_volume *v, struct inode *ip, char *buf, size_t size)
{
	char *parts[64];
	int n = 0;
	struct inode *cur = ip;
	while (cur && cur->ino != FS_ROOT_INO && n < 64) {
		struct inode *par = vol_ifind(v, cur->r.parent);
		const char *name = NULL;
		/* Loading a parent's entries to name a file is fine, but not while reporting a failure of
		 * that very load. */
		if (par && !par->loaded && !v->naming) {
			v->naming = 1;
			vol_load_content(v, par);
			v->naming = 0;
		}
		if (par && par->loaded)
			for (size_t i = 0; i < par->nents; i++)
				if (par->ents[i].ino == cur->ino) {
					name = par->ents[i].name;
					break;
				}
		char tmp[32];
		if (!name) {
			snprintf(tmp, sizeof(tmp), "#%llu", (unsigned long long)cur->ino);
			name = tmp;
		}
		parts[n++] = strdup(name);
		if (!par || par == cur)
			break;
		cur = par;
	}
	size_t off = 0;
	buf[0] = 0;
	if (n == 0)
		snprintf(buf, size, "/");
	for (int i = n - 1; i >= 0; i--) {
		if (off < size)
			off += (size_t)snprintf(buf + off, size - off, "/%s", parts[i] ? parts[i] : "?");
		free(parts[i]);
	}
	return 0;
}

int vol_violation(fs_volume *v, struct inode *ip, int64_t chunk, const char *kind)
{
	char path[4096];
	if (ip)
		vol_path(v, ip, path, sizeof(path));
	else
		snprintf(path, sizeof(path), "(volume metadata)");
	if (chunk >= 0) {
		uint64_t a = (uint64_t)chunk * v->hdr.chunk_size, b = a + v->hdr.chunk_size - 1;
		/* The bytes of the file the chunk holds. */
		if (ip && S_ISREG(ip->r.mode) && ip->r.size > a && ip->r.size - 1 < b)
			b = ip->r.size - 1;
		fs_log(LOG_ERR, "integrity violation: %s chunk %lld (bytes %llu-%llu): %s", path, (long long)chunk,
		       (unsigned long long)a, (unsigned long long)b, kind);
	} else {
		fs_log(LOG_ERR, "integrity violation: %s: %s", path, kind);
	}
	if (!vol_failed(v))
		fs_log(LOG_ERR, "volume %s is now read-only until it is mounted again", v->dir);
	vol_fail(v, FS_ST_TAMPER);
	return -EIO;
}

#ifdef FS_TEST_HOOKS
static void (*clock_override)(struct timespec *);

/* Tests that pin the bytes of a volume (golden vectors) need a fixed clock. */
void fs_test_set_clock(void (*fn)(struct timespec *))
{
	clock_override = fn;
}
#endif

int vol_violation_at(fs_volume *v, struct inode *dir, const char *name, const char *kind)
{
	char path[4096];
	vol_path(v, dir, path, sizeof(path));
	size_t n = strlen(path);
	snprintf(path + n, sizeof(path) - n, "%s%s", n > 1 ? "/" : "", name);
	fs_log(LOG_ERR, "integrity violation: %s: %s", path, kind);
	if (!vol_failed(v))
		fs_log(LOG_ERR, "volume %s is now read-only until it is mounted again", v->dir);
	vol_fail(v, FS_ST_TAMPER);
	return -EIO;
}

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
