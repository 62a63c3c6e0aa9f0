/* fsv_rekey: a new passphrase or key file for the same master key. Only the header's key wrapping
 * changes; no chunk or row is re-encrypted. */
#include <string.h>

#include "fs/volume/internal.h"
#include "fs/volume/setup.h"
#include "fs/volume/rekey.h"
#include "meta/common/reason.h"

int fsv_rekey(const fs_volume_opts *o, const fs_volume_opts *next, char *err, size_t errlen)
{
	if (!next->key_file && !next->key && !next->passphrase_file && !next->passphrase)
		return fs_reason(err, errlen, FS_ST_USAGE, "a new key is needed: a new passphrase or a new key file");
	fs_volume *v = vol_new();
	if (!v)
		return fs_reason(err, errlen, FS_ST_IO, "out of memory");
	v->state = VOL_READONLY;
	int st = vol_setup(v, o, 0, err, errlen);
	if (!st)
		st = vol_lock_writer(v, "the volume in %s is mounted read-write: unmount it first", err, errlen);
	if (!st) {
		fs_volume_opts n = *next;
		n.dir = o->dir;
		/* The new wrapping goes into v->hdr; the master key stays. */
		st = vol_get_master(v, &n, 1 | VOL_KEEP_MASTER, err, errlen);
		if (!st)
			st = vol_header_replace(v, &n, err, errlen);
	}
	vol_destroy(v);
	return st;
}
