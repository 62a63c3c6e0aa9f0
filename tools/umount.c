/* fshield umount: unmount a volume and wait until the daemon serving it has committed and exited. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fuse/control.h"
#include "fs/fuse/daemon.h"
#include "fs/fuse/dlog.h"
#include "meta/common/status.h"
#include "tools/commands.h"
#include "tools/rundir.h"

const char usage_umount[] =
	"umount [-l] [-t SECONDS] MOUNTPOINT\n"
	"  Unmounts MOUNTPOINT and waits until its daemon has made the last commit and exited (at most\n"
	"  SECONDS, 120); exits with the daemon's status, 0 when everything is committed. -l detaches a busy\n"
	"  mount point: the daemon finishes once nothing uses it any more.\n";

/* The canonical path, also for a mount point whose daemon is gone (stat on it fails with ENOTCONN). */
static int canonical(const char *path, char out[PATH_MAX])
{
	if (realpath(path, out))
		return 0;
	char *a = strdup(path), *b = strdup(path), parent[PATH_MAX];
	int rc = -1;
	if (a && b && realpath(dirname(a), parent)) {
		const char *base = basename(b);
		if (strcmp(base, ".") && strcmp(base, "..") && strcmp(base, "/") &&
		    snprintf(out, PATH_MAX, "%s/%s", strcmp(parent, "/") ? parent : "", base) < PATH_MAX)
			rc = 0;
	}
	free(a);
	free(b);
	return rc;
}

/* Whether mountinfo lists a FUSE mount at path (paths there escape blanks as octal). */
static int is_fuse_mount(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[3 * PATH_MAX], mp[3 * PATH_MAX], fstype[256];
	int found = 0;
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		const char *sep = strstr(line, " - ");
		if (!sep || sscanf(line, "%*s %*s %*s %*s %s", mp) != 1 || sscanf(sep + 3, "%255s", fstype) != 1)
			continue;
		char un[sizeof(mp)], *o = un;
		for (const char *p = mp; *p; p++) {
			if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] && p[3]) {
				*o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
				p += 3;
			} else {
				*o++ = *p;
			}
		}
		*o = '\0';
		found = !strcmp(un, path) && !strncmp(fstype, "fuse", 4);
	}
	fclose(f);
	return found;
}

static void on_alarm(int sig)
{
	(void)sig;
}

/* The value after "key " in the state file, or -1. */
static long state_field(int fd, const char *key)
{
	static char buf[64 * 1024]; /* the whole file, with the daemon's last log lines */
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	size_t klen = strlen(key);
	for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
		if (!strncmp(line, key, klen) && line[klen] == ' ')
			return strtol(line + klen + 1, NULL, 10);
	return -1;
}

/* Reports how the daemon ended, from the status it recorded. */
static int outcome(const char *mnt, int fd, long pid)
{
	long status = state_field(fd, "status");
	if (status == 0)
		return FS_OK;
	if (status < 0)
		fprintf(stderr, "fshield umount: %s: the daemon (pid %ld) ended without its final commit", mnt, pid);
	else
		fprintf(stderr, "fshield umount: %s: the daemon (pid %ld) ended with status %ld (%s)", mnt, pid, status,
			fs_status_name((int)status));
	fprintf(stderr, "; its last log lines:\n");
	if (fsd_log_quote(fd, stderr) == 0)
		fprintf(stderr, "    (none recorded; see syslog, or its log_file)\n");
	return status < 0 ? FS_ST_IO : (int)status;
}

int cmd_umount(int argc, char **argv)
{
	int lazy = 0, c;
	unsigned long timeout = 120;
	optind = 1;
	while ((c = getopt(argc, argv, "lt:h")) != -1) {
		if (c == 'l') {
			lazy = 1;
		} else if (c == 't') {
			char *end;
			timeout = strtoul(optarg, &end, 10);
			if (!*optarg || *end || timeout == 0 || timeout > 24 * 3600) {
				fprintf(stderr, "fshield umount: -t: not a number of seconds: %s\n", optarg);
				return FS_ST_USAGE;
			}
		} else {
			print_usage(c == 'h' ? stdout : stderr, usage_umount);
			return c == 'h' ? 0 : FS_ST_USAGE;
		}
	}
	if (argc - optind != 1) {
		print_usage(stderr, usage_umount);
		return FS_ST_USAGE;
	}
	char mnt[PATH_MAX], state[PATH_MAX];
	if (canonical(argv[optind], mnt) != 0) {
		fprintf(stderr, "fshield umount: %s: %s\n", argv[optind], strerror(errno));
		return FS_ST_USAGE;
	}
	char rd[4096];
	if (!run_dir(rd, sizeof(rd)) || fsd_state_path(rd, mnt, state, sizeof(state), 0) != 0) {
		fprintf(stderr, "fshield umount: %s: path too long\n", mnt);
		return FS_ST_USAGE;
	}

	/* Open the state file before unmounting: the daemon removes it as it exits. */
	int fd = open(state, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (!is_fuse_mount(mnt)) {
			fprintf(stderr, "fshield umount: %s: not mounted\n", mnt);
			return FS_ST_USAGE;
		}
		int rc = fsd_unmount(mnt, lazy);
		if (rc < 0) {
			fprintf(stderr, "fshield umount: %s: %s\n", mnt, strerror(-rc));
			return FS_ST_IO;
		}
		fprintf(stderr, "fshield umount: %s: unmounted, but no daemon state was found (%s): "
				"cannot tell whether it committed\n", mnt, state);
		return FS_ST_IO;
	}
	long pid = state_field(fd, "pid");
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		/* Nobody holds it: the daemon died (one that finishes removes it). Clean up after it. */
		if (is_fuse_mount(mnt))
			(void)fsd_unmount(mnt, 1);
		int st = outcome(mnt, fd, pid);
		struct stat a, b;
		if (fstat(fd, &a) == 0 && stat(state, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			/* and its control socket: a new daemon makes its own only once it holds this lock */
			char ctl[PATH_MAX];
			if (fsd_control_path(state, ctl, sizeof(ctl)) == 0)
				unlink(ctl);
			unlink(state);
		}
		close(fd);
		return st;
	}

	int rc = fsd_unmount(mnt, lazy);
	if (rc < 0 && rc != -EINVAL) { /* EINVAL: unmounted already, the daemon is finishing */
		fprintf(stderr, "fshield umount: %s: %s\n", mnt, strerror(-rc));
		close(fd);
		return FS_ST_IO;
	}

	/* The daemon holds an exclusive lock on its state file until it exits. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	alarm((unsigned)timeout);
	int locked = flock(fd, LOCK_SH) == 0;
	alarm(0);
	if (!locked) {
		fprintf(stderr, "fshield umount: %s: the daemon (pid %ld) has not finished after %lu seconds\n", mnt,
			pid, timeout);
		close(fd);
		return FS_ST_IO;
	}
	int st = outcome(mnt, fd, pid);
	close(fd);
	return st;
}
