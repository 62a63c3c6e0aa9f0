/* The steps of opening a volume, shared by fsv_open and the offline verifier. Each returns 0 or an
 * fs_status with a one-line reason in err. */
#ifndef FS_VOL_SETUP_H
#define FS_VOL_SETUP_H
#include "fs/volume/internal.h"

#define VOL_SETUP_HEADER_ONLY 1

/* Reads and parses volume.hdr; unless HEADER_ONLY, gets the key, authenticates the header and derives
 * the subkeys. */
int vol_setup(fs_volume *v, const fs_volume_opts *o, int flags, char *err, size_t errlen);
/* With init.incomplete present (v->init_mark): the creation was interrupted (74, in err) only when the
 * anchor holds no record of the volume; otherwise 0 and v->init_mark becomes VOL_MARK_STRAY. Opens the
 * anchor. */
int vol_check_init_mark(fs_volume *v, const fs_volume_opts *o, char *err, size_t errlen);
int vol_open_anchor(fs_volume *v, const char *trust_uri, const cas_tls *tls, char *err, size_t errlen);
int vol_check_store(fs_volume *v, fs_volume_row *row, char *err, size_t errlen);
int vol_check_anchor(fs_volume *v, const fs_volume_row *row, int *roll_forward, int *pending, char *err,
		     size_t errlen);
/* The master key from o's key options into v->k_master (v->hdr parsed). creating: a new volume's key
 * source and wrapping are set in v->hdr from o; with VOL_KEEP_MASTER added, v->k_master is kept and
 * wrapped instead of a fresh one (a change of passphrase). */
#define VOL_KEEP_MASTER 2
int vol_get_master(fs_volume *v, const fs_volume_opts *o, int creating, char *err, size_t errlen);
/* Writes name in dirfd whole: NAME.tmp, fsync, rename, fsync of the directory. 0 or -errno. */
int vol_write_file_durably(int dirfd, const char *name, const uint8_t *buf, size_t len);
/* The same, with check(ctx, dirfd, "NAME.tmp") run on the written copy before the rename: its nonzero
 * return (an fs_status, or -errno) is returned and nothing is replaced. */
int vol_write_file_checked(int dirfd, const char *name, const uint8_t *buf, size_t len,
			   int (*check)(void *ctx, int dirfd, const char *tmp), void *ctx);
/* Encodes v->hdr under v->k_master and replaces volume.hdr with it, once the written copy opened with
 * check's key options to the same master key (fs/volume/header_write.c). */
int vol_header_replace(fs_volume *v, const fs_volume_opts *check, char *err, size_t errlen);
/* Holds volume.lock exclusively (v->lockfd), as a read-write daemon does: FS_ST_BUSY, with busy (a format
 * naming the backing directory) as the reason, while one runs; a lock file that is not a regular file is
 * tamper. */
int vol_lock_writer(fs_volume *v, const char *busy, char *err, size_t errlen);
/* Records uri as the anchor the volume in dirfd is bound to (anchor.uri, written whole). 0 or -errno. */
int vol_anchor_record_write(int dirfd, const char *uri);
void vol_destroy(fs_volume *v);
void vol_collect_garbage(fs_volume *v);
fs_volume *vol_new(void);
#endif
