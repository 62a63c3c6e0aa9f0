/* After a failure that made the volume read-only: what happens to the changes programs were already told
 * succeeded (docs/THREAT-MODEL.md 7.1). The commit after a violation is vol_commit_failed (commit.c);
 * this file tells what can no longer be committed.
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
