/* Pack files no committed file owns: a commit killed after it wrote the pack file of a new file (or of a
 * new generation) and before the store recorded it. They are removed at a read-write open, once the tree
 * is verified against the anchor, each only if the verified tree has no regular file (ino, gen) that
 * owns it. volume.lock holds a hint, unauthenticated and only ever a cost: 'c' when the last writer
 * closed after a commit that left nothing behind, so the scan (it loads every bucket that owns a pack
 * file) is skipped; anything else (a crash, an old volume, a planted byte) makes the next open scan. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "fs/volume/internal.h"

#define CLEAN_HINT 'c'

/* 1 when name is exactly the pack file name of some (ino, gen) in directory sub of d/. */
static int pack_name(fs_volume *v, const char *sub, const char *name, uint64_t *ino, uint64_t *gen)
{
	unsigned long long i, g;
	char tail, want[64], got[300];
	if (strlen(name) > 40 || strlen(sub) > 8 || sscanf(name, "%16llx.%llx%c", &i, &g, &tail) != 2)
		return 0;
	snprintf(got, sizeof(got), FS_DATA_DIR "/%s/%s", sub, name);
	if (vol_pack_path(v, i, g, want, sizeof(want)) != 0 || strcmp(want, got) != 0)
		return 0; /* not the canonical name: not ours to judge */
	*ino = i;
	*gen = g;
	return 1;
}

/* Scans one d/XX; returns the files removed, or -1 to stop (a bucket failed verification). */
static long scan_sub(fs_volume *v, int dfd, const char *sub)
{
	int sfd = openat(dfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	DIR *s = sfd >= 0 ? fdopendir(sfd) : NULL;
	if (!s) {
		if (sfd >= 0)
			close(sfd);
		return 0;
	}
	long n = 0;
	struct dirent *f;
	while ((f = readdir(s))) {
		uint64_t ino, gen;
		if (!pack_name(v, sub, f->d_name, &ino, &gen))
			continue;
		int err = 0;
		struct inode *ip = vol_iget(v, ino, &err);
		if (ip && ip->r.gen == gen && S_ISREG(ip->r.mode))
			continue; /* owned */
		if (!ip && err != -ENOENT) {
			n = -1; /* not verified: remove nothing more */
			break;
		}
		if (unlinkat(sfd, f->d_name, 0) == 0)
			n++;
	}
	closedir(s);
	return n;
}

void vol_collect_orphans(fs_volume *v)
{
	char hint = 0;
	if (pread(v->lockfd, &hint, 1, 0) == 1 && hint == CLEAN_HINT) {
		vol_clean_hint(v, 0);
		return;
	}
	int dfd = openat(v->dirfd, FS_DATA_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	long total = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		long n = scan_sub(v, dfd, e->d_name);
		if (n < 0) {
			total = -1;
			break;
		}
		total += n;
	}
	closedir(d);
	if (total > 0)
		fs_log(LOG_NOTICE, "volume %s: removed %ld unreferenced pack files (left by an interrupted commit)", v->dir,
		       total);
	if (total >= 0)
		vol_clean_hint(v, 0);
}

void vol_clean_hint(fs_volume *v, int clean)
{
	char c = clean ? CLEAN_HINT : 'o';
	/* Durable before this session creates any pack file: a crash must leave "scan" behind. */
	if (v->lockfd >= 0 && pwrite(v->lockfd, &c, 1, 0) == 1 && !clean)
		fdatasync(v->lockfd);
}
