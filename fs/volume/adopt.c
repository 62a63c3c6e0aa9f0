#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fs/volume/adopt.h"
#include "fs/volume/internal.h"
#include "fs/volume/setup.h"
#include "meta/common/reason.h"

static int bind_new(fs_volume *v, const fs_volume_opts *o, uint64_t version, const uint8_t root[32],
		    fs_adopt_result *res, char *err, size_t errlen)
{
	char path[4096], aerr[256];
	snprintf(path, sizeof(path), "%s/%s", o->dir, FS_META_NAME);
	int rc = fs_store_open(v->dirfd, 1, &v->store);
	if (rc)
		return fs_reason(err, errlen, FS_ST_TAMPER, "%s: %s", path, fs_store_errmsg(v->store));
	fs_volume_row row;
	int st = vol_check_store(v, &row, err, errlen);
	if (st)
		return st;
	/* What verify checked is what gets bound: a change in between is refused. */
	if (row.version != version || !fs_ct_eq(row.root, root, 32))
		return fs_reason(err, errlen, FS_ST_BUSY, "the volume changed after it was verified (now version %llu); run "
							  "trust adopt again",
				 (unsigned long long)row.version);
	const char *uri = fs_anchor_default_uri(o->trust_uri);
	/* A cas:// anchor that released the key is open already. */
	if (!v->anchor && fs_anchor_open_tls(uri, 1, &o->tls, &v->anchor, aerr, sizeof(aerr)) != 0)
		return fs_reason(err, errlen, FS_ST_ANCHOR, "trust anchor %s: %s", uri, aerr);
	int none = fs_anchor_is_none(v->anchor);
	if (none && !(v->hdr.protection & FS_HDR_NO_ROLLBACK_PROTECTION))
		return fs_reason(err, errlen, FS_ST_ANCHOR, "%s offers no rollback protection, and this volume was made with it: "
							    "adopt a trust store or a CAS volume instead",
				 uri);
	fs_anchor_id(v->anchor, res->new_id);
	fs_anchor_state as = { version, { 0 } }, cur;
	memcpy(as.root, root, 32);
	res->registered = 1;
	if (!none && (rc = fs_anchor_register(v->anchor, v->hdr.volid, &as, aerr, sizeof(aerr))) != 0) {
		if (rc != -EEXIST)
			return fs_reason(err, errlen, FS_ST_ANCHOR, "trust anchor %s: %s", uri, aerr);
		if (fs_anchor_get(v->anchor, v->hdr.volid, &cur, aerr, sizeof(aerr)) != 0)
			return fs_reason(err, errlen, FS_ST_ANCHOR, "trust anchor %s: %s", uri, aerr);
		if (cur.version != version || !fs_ct_eq(cur.root, root, 32))
			return fs_reason(err, errlen, FS_ST_ANCHOR, "trust anchor %s already holds version %llu of this volume, "
								    "not the state found (version %llu): that anchor is not lost; "
								    "mount with it, or check with verify what this copy is",
					 uri, (unsigned long long)cur.version, (unsigned long long)version);
		res->registered = 0;
	}
	uint8_t prot = none ? v->hdr.protection : (uint8_t)(v->hdr.protection & ~FS_HDR_NO_ROLLBACK_PROTECTION);
	if (!fs_ct_eq(res->new_id, v->hdr.anchor_id, 16) || prot != v->hdr.protection) {
		memcpy(v->hdr.anchor_id, res->new_id, 16);
		v->hdr.protection = prot;
		if ((st = vol_header_replace(v, o, err, errlen)) != 0)
			return st;
		res->header_rewritten = 1;
	}
	if ((rc = vol_anchor_record_write(v->dirfd, fs_anchor_uri(v->anchor))) != 0)
		return fs_reason(err, errlen, FS_ST_IO, "%s/%s: %s", o->dir, FS_ANCHOR_RECORD, strerror(-rc));
	return 0;
}

int fsv_adopt(const fs_volume_opts *o, uint64_t version, const uint8_t root[32], fs_adopt_result *res, char *err,
	      size_t errlen)
{
	memset(res, 0, sizeof(*res));
	res->version = version;
	memcpy(res->root, root, 32);
	fs_volume *v = vol_new();
	if (!v)
		return fs_reason(err, errlen, FS_ST_IO, "out of memory");
	v->state = VOL_READONLY;
	int st = vol_setup(v, o, 0, err, errlen);
	if (!st) {
		memcpy(res->volid, v->hdr.volid, 16);
		memcpy(res->old_id, v->hdr.anchor_id, 16);
		if (fsv_bound_anchor_uri(o->dir, res->old_uri, sizeof(res->old_uri)) != 0)
			snprintf(res->old_uri, sizeof(res->old_uri), "(URI not recorded)");
		st = vol_lock_writer(v, "the volume in %s is mounted read-write: unmount it first", err, errlen);
	}
	if (!st)
		st = bind_new(v, o, version, root, res, err, errlen);
	vol_destroy(v);
	return st;
}
