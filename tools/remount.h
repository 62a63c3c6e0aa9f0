/* Remount of a live fshield mount (mount -o remount,...): the kernel's flags by mount(2), the daemon's
 * state (read-only, access time policy) through its control channel (fs/fuse/control.h). */
#ifndef FS_TOOLS_REMOUNT_H
#define FS_TOOLS_REMOUNT_H

/* Whether o is a mount flag that can change on a live mount; records it in on/off (MS_* flags) or, for
 * the access time options, in *atime (FS_ATIME_*). */
int remount_flag(const char *o, unsigned long *on, unsigned long *off, int *atime);

/* Remounts mountpoint: ro 1 read-only, 0 read-write, -1 unchanged; atime FS_ATIME_* or -1 unchanged;
 * on/off the MS_* flags to set and clear (the others stay as they are). Returns an fs_status, with a
 * one-line reason on standard error. */
int remount(const char *mountpoint, int ro, int atime, unsigned long on, unsigned long off);
#endif
