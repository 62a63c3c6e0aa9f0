/* The FUSE daemon: serves one protected volume at a mount point over the libfuse3 low-level API.
 * tools/mount.c parses the command line into an fsd_config and calls fsd_run; tools/umount.c finds the
 * daemon serving a mount point through its state file. */
#ifndef FS_FUSE_DAEMON_H
#define FS_FUSE_DAEMON_H
#include <stddef.h>
#include <stdint.h>

#include "fs/volume/volume.h"

struct fsd_config {
	const char *mountpoint;     /* absolute and canonical */
	fs_volume_opts vol;         /* .dir (absolute), key or passphrase file, trust URI, readonly */
	int foreground;             /* stay attached and log to stderr; else daemonize once mounted */
	unsigned commit_interval;   /* seconds between timer commits; 0: only fsync, the dirty limit, unmount */
	int allow_other;
	int nonempty;               /* mount over a directory that has entries (-o nonempty); else refused */
	const char *mount_opts;     /* further comma-separated options for libfuse and the kernel, or NULL */
	const char *run_dir;        /* where the daemon's state file goes (made 0755 if missing) */
	const char *log_file;       /* absolute path the log lines are appended to (fs/fuse/dlog.h), or NULL */
	int atime;                  /* FS_ATIME_*: the access time policy (relatime, strictatime, noatime) */
	/* Image mode (fs/fuse/image.h): serve vol.dir read-only as the protected tree this sealed fspf describes.
	 * vol.readonly must be set; the key and trust options of vol are not used. */
	const char *fspf;           /* absolute path, or NULL for a volume */
	const uint8_t *fspf_key;    /* 32 bytes */
	const uint8_t *fspf_tag;    /* 32 bytes */
};

/* Opens the volume, mounts it and serves it until it is unmounted or the daemon gets SIGTERM, SIGINT or
 * SIGHUP, then commits and closes it. Returns the process exit status (an fs_status). Without foreground it
 * forks: the calling process returns 0 once the mount is ready, or the failure status; the child serves and
 * never returns (it exits). Failures before the mount is ready are printed as "fshield mount: <reason>". */
int fsd_run(const struct fsd_config *c);

/* The daemon's state file for a mount point: <dir>/<hash of the mount point>.pid, where dir is
 * run_dir (the command line picks it: tools/rundir.h).
 * The file (mode 0600: log lines may name files) holds "pid N", "mountpoint PATH", the daemon's last
 * log lines as "log LINE" (fs/fuse/dlog.h) and, once the daemon has finished, "status N" (its exit status); the daemon holds an exclusive flock on it while it runs and removes it as it exits.
 * Returns 0 or -ENAMETOOLONG. mkdir creates the directory. */
int fsd_state_path(const char *run_dir, const char *mountpoint, char *out, size_t outlen, int mkdir);

/* Unmounts a FUSE mount point: umount2 as root, else fusermount3 -u. lazy detaches a busy mount.
 * Returns 0 or -errno. */
int fsd_unmount(const char *mountpoint, int lazy);
#endif
