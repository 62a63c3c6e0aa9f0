/* Where mount and umount find a daemon's state file (fs/fuse/daemon.h, fsd_state_path). */
#ifndef FS_TOOLS_RUNDIR_H
#define FS_TOOLS_RUNDIR_H
#include <stddef.h>
/* $FSHIELD_RUN_DIR, else /run/fshield for root, else $XDG_RUNTIME_DIR/fshield, else /tmp/fshield-UID.
 * Returns buf, or NULL when the name does not fit. */
const char *run_dir(char *buf, size_t size);
#endif
