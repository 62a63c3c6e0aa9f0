/* After a failure that made the volume read-only: what happens to the changes programs were already told
 * succeeded (docs/THREAT-MODEL.md, "After an integrity violation").
 *
 * An integrity violation leaves the verified in-memory state intact: tampered data never got in (it
 * failed verification before it was used), and no change was accepted since. That state is committed,
 * as it would have been without the violation, so nothing acknowledged is lost; the tampered rows and
 * chunks stay in the store as they were, still detected. A failure that says the volume is no longer
 * ours to write (the anchor refused a commit, the writer lease was lost, the copy is stale) commits
 * nothing: those changes are lost, and every fsync, close and the unmount say so. */
#include <errno.h>
#include <syslog.h>

#include "fs/volume/internal.h"
#include "meta/common/status.h"

int vol_salvageable(const fs_volume *v)
{
	return vol_failed(v) && v->fail_status == FS_ST_TAMPER && !v->stale && v->fail_from != VOL_READONLY;
}

int vol_salvage_pending(const fs_volume *v)
{
	enum vol_state s = v->fail_from;
	return s == VOL_DIRTY || s == VOL_PREPARED || s == VOL_PREPARED_DIRTY;
}

int vol_commit_failed(fs_volume *v)
{
	if (!vol_salvageable(v))
		return -EIO;
	if (!vol_salvage_pending(v) && !v->ndead)
		return 0;
	int status = v->fail_status;
	uint64_t from = v->version;
	v->state = v->fail_from; /* for this commit only: no write gets in, the lock is held */
	int rc = vol_commit_locked(v);
	if (vol_failed(v)) { /* failed again in the commit: a worse reason wins */
		v->fail_status = fs_status_worse(status, v->fail_status);
		return rc ? rc : -EIO;
	}
	v->fail_from = v->state;
	v->state = VOL_FAILED;
	v->fail_status = status;
	if (!rc && v->version != from)
		fs_log(LOG_NOTICE, "volume %s: the changes made before the integrity violation were committed "
				   "(version %llu)", v->dir, (unsigned long long)v->version);
	return rc;
}

uint64_t vol_uncommitted(const fs_volume *v)
{
	uint64_t n = v->nrmi;
	for (uint32_t b = 0; v->bk && b < v->hdr.buckets; b++)
		for (struct inode *ip = v->bk[b].head; ip; ip = ip->bnext)
			n += ip->dirty || ip->ents_dirty || ip->ndc || ip->fd_unsynced;
	return n;
}

int fsv_flush(fs_volume *v, uint64_t ino, int writer)
{
	pthread_mutex_lock(&v->lock);
	int rc = 0;
	if (vol_failed(v) && !vol_salvageable(v)) {
		struct inode *ip = vol_ifind(v, ino);
		/* Changes that will never be committed: this file's, or any a writer may have relied on. */
		if ((ip && (ip->dirty || ip->ents_dirty || ip->ndc || ip->fd_unsynced)) ||
		    (writer && vol_salvage_pending(v)))
			rc = -EIO;
	}
	pthread_mutex_unlock(&v->lock);
	return rc;
}
