/* A change of the key that opens a volume, without re-encrypting it (fshield passwd). */
#ifndef FS_REKEY_H
#define FS_REKEY_H
#include "fs/volume/volume.h"

/* Opens the header with o's key and rewraps the same master key under next's passphrase (Argon2id with a
 * fresh salt and next's cost) or key file (key source 3, docs/FORMAT.md 3.2). The volume must not be
 * mounted read-write. The new header replaces the old one only after it opened with next. Returns an
 * fs_status with a reason in err. */
int fsv_rekey(const fs_volume_opts *o, const fs_volume_opts *next, char *err, size_t errlen);
#endif
