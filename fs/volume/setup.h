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
void vol_destroy(fs_volume *v);
void vol_collect_garbage(fs_volume *v);
fs_volume *vol_new(void);
#endif
