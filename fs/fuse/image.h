/* The read-only image front end of the daemon: serves a protected tree (a directory of ciphertext,
 * authenticated and plain files) as described by a sealed fspf (meta/fspf/fspf.h). Names, modes, owners, sizes
 * and link targets come from the manifest; file data from the tree, every chunk of a protected file checked
 * against the manifest before it is handed out. fs/fuse/daemon.c selects it when fsd_config.fspf is set. */
#ifndef FS_FUSE_IMAGE_H
#define FS_FUSE_IMAGE_H
#include <stddef.h>
#include <stdint.h>

#include "fs/fuse/ops.h"

struct fsi_image;

/* Loads and checks FSPF (key, tag) and opens ROOT. Returns an fs_status (5 wrong key, 1 tag mismatch or a
 * malformed manifest, 64 an fspf that is not encrypted, 74 unreadable); err gets a one-line reason. */
int fsi_open(const char *root, const char *fspf, const uint8_t key[32], const uint8_t tag[32],
	     struct fsi_image **out, char *err, size_t errlen);
/* Number of entries served (for the log). */
uint32_t fsi_entries(const struct fsi_image *img);
/* Releases everything. Returns 0, or FS_ST_TAMPER when an integrity violation was seen while serving. */
int fsi_close(struct fsi_image *img);

extern const struct fuse_lowlevel_ops fsi_ops;
#endif
