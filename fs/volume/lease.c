/* The writer lease at the trust anchor and the periodic re-check of the anchor, which bound how long a
 * stale copy of a volume is served (docs/THREAT-MODEL.md, "Stale copies"). */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>

#include "fs/volume/internal.h"
#include "meta/common/boot.h"
#include "meta/common/reason.h"

/* The holder names this backing directory on this machine (its lock file's device and inode, and the
 * boot): a daemon restarted after a crash takes its own lease back at once, a copy of the directory
 * has another holder. */
static void lease_holder(fs_volume *v, uint8_t out[16])
{
	struct stat st;
	char boot[64];
	fs_boot_id(boot, sizeof(boot));
	if (fstat(v->lockfd, &st) != 0)
		memset(&st, 0, sizeof(st));
	uint64_t id[2] = { (uint64_t)st.st_dev, (uint64_t)st.st_ino };
	crypto_generichash_state h;
	crypto_generichash_init(&h, (const uint8_t *)"fshield-lease-v1", 16, 16);
	crypto_generichash_update(&h, (const uint8_t *)boot, strlen(boot));
	crypto_generichash_update(&h, (const uint8_t *)id, sizeof(id));
	crypto_generichash_final(&h, out, 16);
}

int vol_lease_take(fs_volume *v, unsigned ttl, char *err, size_t errlen)
{
	v->lease_ttl = ttl ? ttl : FS_LEASE_SECONDS;
	if (fs_anchor_is_none(v->anchor))
		return 0;
	lease_holder(v, v->lease_holder);
	fs_anchor_state cur;
	char aerr[256];
	int rc = fs_anchor_lease(v->anchor, v->hdr.volid, v->lease_holder, v->lease_ttl, &cur, aerr, sizeof(aerr));
	if (rc == -EBUSY)
		return fs_reason(err, errlen, FS_ST_BUSY,
				 "%s; unmount it there first (the lease of a stopped daemon lapses within %u s)", aerr,
				 v->lease_ttl);
	if (rc)
		return fs_reason(err, errlen, FS_ST_ANCHOR, "trust anchor: %s", aerr);
	v->have_lease = 1;
	return 0;
}

void vol_lease_release(fs_volume *v)
{
	if (!v->have_lease)
		return;
	fs_anchor_state cur;
	char aerr[256];
	if (fs_anchor_lease(v->anchor, v->hdr.volid, v->lease_holder, 0, &cur, aerr, sizeof(aerr)) != 0)
		fs_log(LOG_WARNING, "%s: could not give up the writer lease (%s); it lapses within %u s", v->dir, aerr,
		       v->lease_ttl);
	v->have_lease = 0;
}

unsigned fsv_anchor_interval(fs_volume *v)
{
	unsigned s = v->lease_ttl / 3;
	return s ? s : 1;
}

int fsv_check_anchor(fs_volume *v)
{
	pthread_mutex_lock(&v->lock);
	int st = 0;
	if (!v->anchor || fs_anchor_is_none(v->anchor) || v->stale)
		goto out;
	fs_anchor_state a;
	char aerr[256];
	int rc = v->have_lease ? fs_anchor_lease(v->anchor, v->hdr.volid, v->lease_holder, v->lease_ttl, &a, aerr, sizeof(aerr))
			       : fs_anchor_get(v->anchor, v->hdr.volid, &a, aerr, sizeof(aerr));
	if (rc == -EBUSY) {
		fs_log(LOG_ERR, "%s: the writer lease was lost (%s): another writer may have the volume; it is now read-only",
		       v->dir, aerr);
		v->have_lease = 0;
		vol_fail(v, FS_ST_BUSY);
		st = FS_ST_BUSY;
		goto out;
	}
	if (rc) {
		st = FS_ST_ANCHOR;
		goto out;
	}
	/* A prepared version not yet acknowledged is ours: the anchor is one behind then. */
	if (a.version > v->version || (a.version == v->version && !fs_ct_eq(a.root, v->root, 32))) {
		fs_log(LOG_ERR, "%s: stale: the trust anchor holds version %llu, past version %llu served here (another copy "
				"of the volume committed); it is now read-only and refuses every request (EIO): unmount it",
		       v->dir, (unsigned long long)a.version, (unsigned long long)v->version);
		v->stale = 1;
		vol_fail(v, FS_ST_ROLLBACK);
		st = FS_ST_ROLLBACK;
	}
out:
	pthread_mutex_unlock(&v->lock);
	return st;
}
