/* The daemon's control channel (fs/fuse/control.h). One thread accepts one request per connection and
 * answers "ok" or "err N" (an errno value). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "fs/fuse/control.h"

struct fsd_control {
	int fd;
	pthread_t thread;
	struct fsd_fs *fs;
	const char *mountpoint;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

int fsd_control_path(const char *state_path, char *out, size_t outlen)
{
	size_t n = strlen(state_path);
	if (n < 4 || strcmp(state_path + n - 4, ".pid") != 0 || n + 1 > outlen ||
	    n + 1 > sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	memcpy(out, state_path, n - 4);
	memcpy(out + n - 4, ".ctl", 5);
	return 0;
}

static int handle(struct fsd_control *c, const char *req)
{
	struct fsd_fs *fs = c->fs;
	int policy;
	if (!strcmp(req, "ro")) {
		__atomic_store_n(&fs->remount_ro, 1, __ATOMIC_RELEASE);
		int rc = fs->ro ? 0 : fsv_commit(fs->v);
		/* and the access times, which wait for a commit of a change: none will come now */
		if (rc == 0 && !fs->ro && fsv_commit_atime(fs->v) < 0)
			fs_log(LOG_WARNING, "%s: the access times of this mount were not committed", c->mountpoint);
		if (rc < 0)
			fs_log(LOG_ERR, "%s: remounted read-only, but the commit failed: %s", c->mountpoint,
			       strerror(-rc));
		else
			fs_log(LOG_INFO, "%s: remounted read-only, everything committed", c->mountpoint);
		return rc;
	}
	if (!strcmp(req, "rw")) {
		if (fs->ro)
			return -EROFS; /* opened read-only: nothing at the anchor may change; mount it again */
		int rc = fsv_check_writable(fs->v);
		if (rc < 0)
			return rc;
		__atomic_store_n(&fs->remount_ro, 0, __ATOMIC_RELEASE);
		fs_log(LOG_INFO, "%s: remounted read-write", c->mountpoint);
		return 0;
	}
	if (sscanf(req, "atime %d", &policy) == 1 && policy >= FS_ATIME_RELATIME && policy <= FS_ATIME_NEVER) {
		__atomic_store_n(&fs->atime, policy, __ATOMIC_RELAXED);
		return 0;
	}
	return -EINVAL;
}

static void *control_main(void *arg)
{
	struct fsd_control *c = arg;
	for (;;) {
		int s = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
		if (s < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL; /* shut down */
		}
		struct ucred cr;
		socklen_t len = sizeof(cr);
		char req[64], ans[32];
		ssize_t n = 0;
		int rc;
		if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || (cr.uid != 0 && cr.uid != geteuid())) {
			rc = -EPERM;
		} else {
			struct timeval tv = { 5, 0 };
			setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			n = read(s, req, sizeof(req) - 1);
			if (n <= 0) {
				close(s);
				continue;
			}
			req[n] = '\0';
			req[strcspn(req, "\n")] = '\0';
			rc = handle(c, req);
		}
		int m = rc ? snprintf(ans, sizeof(ans), "err %d\n", -rc) : snprintf(ans, sizeof(ans), "ok\n");
		if (write(s, ans, (size_t)m) != m) {
			/* the helper is gone */
		}
		close(s);
	}
}

int fsd_control_start(struct fsd_control **out, const char *path, struct fsd_fs *fs, const char *mountpoint)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	struct fsd_control *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	snprintf(c->path, sizeof(c->path), "%s", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	c->fs = fs;
	c->mountpoint = mountpoint;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc = c->fd < 0 ? -errno : 0;
	/* A socket left by a daemon that died: the state file's lock, held by now, says it is not in use. */
	if (rc == 0)
		unlink(path);
	mode_t old = umask(0077);
	if (rc == 0 && (bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(c->fd, 4) != 0))
		rc = -errno;
	umask(old);
	if (rc == 0 && (rc = -pthread_create(&c->thread, NULL, control_main, c)) != 0)
		unlink(path);
	if (rc < 0) {
		if (c->fd >= 0)
			close(c->fd);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void fsd_control_stop(struct fsd_control *c)
{
	if (!c)
		return;
	shutdown(c->fd, SHUT_RDWR); /* wakes accept */
	pthread_join(c->thread, NULL);
	close(c->fd);
	unlink(c->path);
	free(c);
}

int fsd_control_send(const char *path, const char *request)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	char ans[32];
	ssize_t n;
	int rc = connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -errno;
	size_t len = strlen(request);
	if (rc == 0 && write(s, request, len) != (ssize_t)len)
		rc = -errno;
	if (rc == 0) {
		shutdown(s, SHUT_WR);
		struct timeval tv = { 60, 0 }; /* the commit before read-only may take a while */
		setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		n = read(s, ans, sizeof(ans) - 1);
		if (n <= 0) {
			rc = n < 0 ? -errno : -EPROTO;
		} else {
			int e;
			ans[n] = '\0';
			rc = !strncmp(ans, "ok", 2) ? 0 : sscanf(ans, "err %d", &e) == 1 && e > 0 ? -e : -EPROTO;
		}
	}
	close(s);
	return rc;
}
