/* The daemon's control channel: a Unix socket next to its state file, through which the mount helper
 * changes what can change on a live mount (remount: read-only or read-write, the access time policy).
 * The kernel passes a remount to the mount only, never to the daemon, so the helper tells the daemon
 * itself. Only the daemon's own user (or root) may connect. */
#ifndef FS_FUSE_CONTROL_H
#define FS_FUSE_CONTROL_H
#include <stddef.h>

#include "fs/fuse/ops.h"

struct fsd_control;

/* The socket for a state file path (…/<hash>.pid becomes …/<hash>.ctl). 0 or -ENAMETOOLONG. */
int fsd_control_path(const char *state_path, char *out, size_t outlen);

/* Starts serving at path for fs; mountpoint names the mount in log lines. 0 or -errno. */
int fsd_control_start(struct fsd_control **out, const char *path, struct fsd_fs *fs, const char *mountpoint);
/* Stops serving and removes the socket. */
void fsd_control_stop(struct fsd_control *c);

/* Requests, one line each; the answer is 0 or -errno:
 *   "ro"       commit what is pending, then change nothing more (not even access times)
 *   "rw"       changes allowed again (-EROFS when the volume was opened read-only or has failed)
 *   "atime N"  the access time policy FS_ATIME_* */
int fsd_control_send(const char *path, const char *request);
#endif
