/* The daemon around the FUSE operations: opens the volume, mounts it, backgrounds once the mount is
 * ready, commits on a timer, unmounts on SIGTERM/SIGINT/SIGHUP, and closes (commits) the volume at the end.
 *
 * Threads: libfuse's workers serve requests; a signal thread takes the termination signals (blocked
 * everywhere else) and unmounts, so that the kernel's last writes still reach the volume; a timer thread
 * commits every commit_interval seconds while something is pending; an anchor thread re-checks the trust
 * anchor every fsv_anchor_interval seconds (renewing the writer lease), so that a stale copy stops being
 * served. The main thread runs the loop and then shuts everything down in order. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "crypto/keys.h"
#include "fs/fuse/control.h"
#include "fs/fuse/daemon.h"
#include "fs/fuse/dlog.h"
#include "fs/fuse/image.h"
#include "fs/fuse/ops.h"

/* How long the kernel may cache entries and attributes: nothing changes the volume behind its back. */
#define CACHE_SECONDS 60.0
#define MAX_THREADS 32

struct daemon {
	const struct fsd_config *c;
	struct fsd_fs fs;
	struct fuse_session *se;
	pthread_t main_thread;
	volatile int loop_done;
	/* timer */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stopping;
	/* state file */
	int state_fd;
	char state_path[PATH_MAX];
	/* log */
	int log_fd;
	int journal;
};

int fsd_state_path(const char *run_dir, const char *mountpoint, char *out, size_t outlen, int mk)
{
	char dir[PATH_MAX];
	int n = snprintf(dir, sizeof(dir), "%s", run_dir);
	if (n < 0 || (size_t)n >= sizeof(dir))
		return -ENAMETOOLONG;
	if (mk && mkdir(dir, 0755) != 0 && errno != EEXIST)
		return -errno;
	uint8_t h[16];
	char hex[33];
	crypto_generichash(h, sizeof(h), (const unsigned char *)mountpoint, strlen(mountpoint), NULL, 0);
	fs_hex(hex, h, sizeof(h));
	n = snprintf(out, outlen, "%s/%s.pid", dir, hex);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

int fsd_unmount(const char *mountpoint, int lazy)
{
	if (geteuid() == 0)
		return umount2(mountpoint, lazy ? MNT_DETACH : 0) == 0 ? 0 : -errno;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", lazy ? "-uz" : "-u", "--", mountpoint, (char *)NULL);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EBUSY;
}

static void fuse_log_to_fs(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	fs_log((int)level, "%s", msg);
}

/* The state file's head; the log sink writes it, followed by the daemon's last log lines. */
static void state_write_pid(struct daemon *d)
{
	char buf[PATH_MAX + 64];
	snprintf(buf, sizeof(buf), "pid %ld\nmountpoint %s\n", (long)getpid(), d->c->mountpoint);
	fsd_log_start(d->log_fd, d->journal, d->state_fd, buf);
}

/* A mount refused before it was ready: the reason goes to the caller, and to the log file. */
static void refuse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void refuse(const char *fmt, ...)
{
	char msg[PATH_MAX + 512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "fshield mount: %s\n", msg);
	fsd_log_record(msg);
}

/* Takes the state file: an exclusive flock for as long as this process lives. */
static int state_open(struct daemon *d, char *err, size_t errlen)
{
	int rc = fsd_state_path(d->c->run_dir, d->c->mountpoint, d->state_path, sizeof(d->state_path), 1);
	if (rc < 0) {
		snprintf(err, errlen, "cannot create the state file for %s: %s", d->c->mountpoint, strerror(-rc));
		return FS_ST_IO;
	}
	for (int tries = 0; tries < 10; tries++) {
		int fd = open(d->state_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0) {
			snprintf(err, errlen, "%s: %s", d->state_path, strerror(errno));
			return FS_ST_IO;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
			char buf[64] = "";
			ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
			long pid = 0;
			if (n > 0)
				sscanf(buf, "pid %ld", &pid);
			close(fd);
			snprintf(err, errlen, "%s is already served by fshield (pid %ld)", d->c->mountpoint, pid);
			return FS_ST_BUSY;
		}
		/* The previous owner removes the file as it exits: make sure the lock is on the file named. */
		struct stat a, b;
		if (fstat(fd, &a) == 0 && stat(d->state_path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			if (fchmod(fd, 0600) != 0) {
				/* a file of an older daemon; its lines are only ours from here */
			}
			d->state_fd = fd;
			state_write_pid(d);
			return FS_OK;
		}
		close(fd);
	}
	snprintf(err, errlen, "%s: cannot take the state file", d->state_path);
	return FS_ST_IO;
}

/* A mount hides what the directory holds until it is unmounted: files written there by a program that ran
 * before the mount, and would read them after, silently vanish. Refused unless -o nonempty, as fusermount
 * did. A directory that cannot be listed is left to the mount, which reports its own error. */
static int mountpoint_empty(const char *mountpoint, char *err, size_t errlen)
{
	DIR *d = opendir(mountpoint);
	if (!d)
		return FS_OK;
	struct dirent *e;
	const char *first = NULL;
	char name[256] = "";
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(name, sizeof(name), "%s", e->d_name);
			first = name;
			break;
		}
	closedir(d);
	if (!first)
		return FS_OK;
	snprintf(err, errlen, "the mount point %s is not empty (it holds '%s'): mounting would hide what it holds; "
		 "empty it, choose an empty directory, or give -o nonempty to mount over it anyway",
		 mountpoint, first);
	return FS_ST_USAGE;
}

/* Records the exit status for "fshield umount" (which holds the file open) and removes the file. */
static void state_close(struct daemon *d, int status)
{
	if (d->state_fd < 0)
		return;
	fsd_log_state_done();
	if (status >= 0) {
		char buf[32];
		int n = snprintf(buf, sizeof(buf), "status %d\n", status);
		off_t end = lseek(d->state_fd, 0, SEEK_END);
		if (end < 0 || pwrite(d->state_fd, buf, (size_t)n, end) != n)
			fs_log(LOG_WARNING, "%s: cannot write the state file %s", d->c->mountpoint, d->state_path);
	}
	struct stat a, b;
	if (fstat(d->state_fd, &a) == 0 && stat(d->state_path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		unlink(d->state_path);
	close(d->state_fd);
	d->state_fd = -1;
}

/* Waits until the timer's time or the stop; 0 when stopping. Called with d->mu held. */
static int wait_or_stop(struct daemon *d, unsigned seconds)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += seconds;
	while (!d->stopping && pthread_cond_timedwait(&d->cv, &d->mu, &t) != ETIMEDOUT)
		;
	return !d->stopping;
}

static void *timer_main(void *arg)
{
	struct daemon *d = arg;
	int last = 0;
	pthread_mutex_lock(&d->mu);
	while (wait_or_stop(d, d->c->commit_interval)) {
		pthread_mutex_unlock(&d->mu);
		if (fsv_dirty(d->fs.v)) {
			int rc = fsv_commit(d->fs.v);
			if (rc < 0 && rc != last)
				fs_log(LOG_ERR, "%s: commit failed: %s", d->c->mountpoint, strerror(-rc));
			else if (rc == 0 && last < 0)
				fs_log(LOG_NOTICE, "%s: commits succeed again", d->c->mountpoint);
			last = rc;
		}
		pthread_mutex_lock(&d->mu);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

/* A stale volume fails every request; what the kernel cached of it must not be served either. */
static void drop_kernel_caches(struct daemon *d)
{
	uint64_t *inos;
	size_t n;
	if (fsv_known_inodes(d->fs.v, &inos, &n) != 0) {
		fs_log(LOG_WARNING, "%s: out of memory: the kernel may still serve what it cached", d->c->mountpoint);
		return;
	}
	for (size_t i = 0; i < n; i++)
		fuse_lowlevel_notify_inval_inode(d->se, (fuse_ino_t)inos[i], 0, 0);
	free(inos);
}

static void *anchor_main(void *arg)
{
	struct daemon *d = arg;
	int last = 0;
	pthread_mutex_lock(&d->mu);
	while (wait_or_stop(d, fsv_anchor_interval(d->fs.v))) {
		pthread_mutex_unlock(&d->mu);
		int st = fsv_check_anchor(d->fs.v);
		if (st == FS_ST_ANCHOR && last != st)
			fs_log(LOG_WARNING, "%s: the trust anchor did not answer its re-check; retrying", d->c->mountpoint);
		else if (st && st != FS_ST_ANCHOR)
			fs_log(LOG_ERR, "%s: %s: this mount no longer serves the volume's latest state", d->c->mountpoint,
			       fs_status_name(st));
		last = st;
		if (st == FS_ST_ROLLBACK)
			drop_kernel_caches(d);
		pthread_mutex_lock(&d->mu);
		if (st && st != FS_ST_ANCHOR)
			break; /* stale or read-only for good */
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

static void term_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

static void wake_handler(int sig)
{
	(void)sig;
}

/* On a termination signal, unmount while the workers still serve, so that whatever the kernel still has
 * to write reaches the volume; the session then ends by itself. A busy mount point is detached instead and
 * the loop told to stop (open files then lose the mount, as with any daemon that stops). */
static void *signal_main(void *arg)
{
	struct daemon *d = arg;
	sigset_t set;
	int sig;
	term_signals(&set);
	if (sigwait(&set, &sig) != 0)
		return NULL;
	fs_log(LOG_NOTICE, "%s: unmounting on %s", d->c->mountpoint, strsignal(sig));
	int rc = fsd_unmount(d->c->mountpoint, 0);
	if (rc == 0)
		return NULL;
	fs_log(LOG_WARNING, "%s: cannot unmount (%s); detaching it and stopping", d->c->mountpoint, strerror(-rc));
	fuse_session_exit(d->se);
	/* The loop's main thread sleeps in sem_wait until a signal interrupts it. */
	while (!d->loop_done) {
		pthread_kill(d->main_thread, SIGUSR2);
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static int build_args(const struct fsd_config *c, struct fuse_args *args)
{
	char *opts = NULL, *fsname = NULL;
	int rc = -1;
	if (asprintf(&fsname, "fsname=%s", c->vol.dir) < 0) {
		fsname = NULL;
		goto out;
	}
	if (fuse_opt_add_opt_escaped(&opts, fsname) || fuse_opt_add_opt(&opts, "subtype=fshield") ||
	    fuse_opt_add_opt(&opts, "default_permissions") ||
	    (c->allow_other && fuse_opt_add_opt(&opts, "allow_other")) ||
	    (c->vol.readonly && fuse_opt_add_opt(&opts, "ro")) ||
	    (c->mount_opts && *c->mount_opts && fuse_opt_add_opt(&opts, c->mount_opts)))
		goto out;
	if (fuse_opt_add_arg(args, "fshield") || fuse_opt_add_arg(args, "-o") || fuse_opt_add_arg(args, opts))
		goto out;
	rc = 0;
out:
	free(opts);
	free(fsname);
	return rc;
}

/* Daemon side after the mount is ready: stdio to /dev/null (standard error stays when it is the journal),
 * own session, out of the way of the caller. */
static void detach(int keep_stderr)
{
	int fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		if (!keep_stderr)
			dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	setsid();
	if (chdir("/") != 0) {
		/* not fatal: every path in use is absolute */
	}
}

/* Serves the volume; ready_fd (or -1) gets one byte once the mount is ready. Returns the exit status. */
static int serve(const struct fsd_config *c, int ready_fd)
{
	struct daemon d;
	char err[PATH_MAX + 256] = "";
	int status;
	memset(&d, 0, sizeof(d));
	d.c = c;
	d.state_fd = -1;
	d.log_fd = -1;
	d.main_thread = pthread_self();
	pthread_mutex_init(&d.mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d.cv, &ca);
	pthread_condattr_destroy(&ca);

	/* Termination signals go to the signal thread only; every thread started from here inherits this. */
	sigset_t term;
	term_signals(&term);
	pthread_sigmask(SIG_BLOCK, &term, NULL);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = wake_handler;
	sigaction(SIGUSR2, &sa, NULL);

	fuse_set_log_func(fuse_log_to_fs);

	if (c->log_file && (d.log_fd = fsd_log_file_open(c->log_file, err, sizeof(err))) < 0) {
		fprintf(stderr, "fshield mount: %s\n", err);
		return FS_ST_IO;
	}
	d.journal = fsd_log_stderr_is_journal();
	fsd_log_start(d.log_fd, d.journal, -1, NULL);
	status = state_open(&d, err, sizeof(err));
	if (status != FS_OK) {
		refuse("%s", err);
		goto close_log;
	}
	if (!c->nonempty && (status = mountpoint_empty(c->mountpoint, err, sizeof(err))) != FS_OK) {
		refuse("%s", err);
		state_close(&d, -1);
		goto close_log;
	}

	fs_volume *v = NULL;
	struct fsi_image *img = NULL;
	if (c->fspf)
		status = fsi_open(c->vol.dir, c->fspf, c->fspf_key, c->fspf_tag, &img, err, sizeof(err));
	else
		status = fsv_open(&c->vol, &v, err, sizeof(err));
	if (status != FS_OK) {
		refuse("%s", err[0] ? err : fs_status_name(status));
		state_close(&d, -1);
		goto close_log;
	}
	fs_volume_info info;
	memset(&info, 0, sizeof(info));
	if (v)
		fsv_info(v, &info);
	d.fs.v = v;
	d.fs.ro = c->vol.readonly;
	d.fs.timeout = CACHE_SECONDS;
	d.fs.blksize = info.chunk_size ? info.chunk_size : 4096;
	d.fs.atime = c->atime;

	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	if (build_args(c, &args) != 0) {
		refuse("out of memory");
		status = FS_ST_IO;
		goto close_volume;
	}
	if (img)
		d.se = fuse_session_new(&args, &fsi_ops, sizeof(fsi_ops), img);
	else
		d.se = fuse_session_new(&args, &fsd_ops, sizeof(fsd_ops), &d.fs);
	fuse_opt_free_args(&args);
	d.fs.se = d.se;
	if (!d.se) {
		refuse("invalid mount options");
		status = FS_ST_USAGE;
		goto close_volume;
	}
	/* Kept open from here on: /dev/fuse and the control socket. */
	if (v && (status = fsv_fd_budget(v, 2, err, sizeof(err))) != FS_OK) {
		refuse("%s", err);
		goto destroy_session;
	}
	if (fuse_session_mount(d.se, c->mountpoint) != 0) {
		refuse("cannot mount on %s", c->mountpoint);
		status = FS_ST_IO;
		goto destroy_session;
	}
	if (ready_fd >= 0) {
		fsd_log_detached();
		detach(d.journal);
		char b = 0;
		if (write(ready_fd, &b, 1) != 1) {
			/* the caller is gone; keep serving */
		}
		close(ready_fd);
	}
	if (img)
		fs_log(LOG_INFO, "%s: serving the protected tree %s (fspf %s, %u entries), read-only", c->mountpoint,
		       c->vol.dir, c->fspf, fsi_entries(img));
	else
		fs_log(LOG_INFO, "%s: serving %s (version %llu)%s", c->mountpoint, c->vol.dir,
		       (unsigned long long)info.version, c->vol.readonly ? ", read-only" : "");

	/* The control channel for remount; without it the mount still serves, but cannot be remounted. */
	struct fsd_control *ctl = NULL;
	char ctl_path[PATH_MAX];
	int ctl_rc = fsd_control_path(d.state_path, ctl_path, sizeof(ctl_path));
	if (v && (ctl_rc != 0 || (ctl_rc = fsd_control_start(&ctl, ctl_path, &d.fs, c->mountpoint)) != 0))
		fs_log(LOG_WARNING, "%s: no control channel (%s): remount is not possible", c->mountpoint,
		       strerror(-ctl_rc));

	pthread_t sig_thread, timer_thread, anchor_thread;
	int have_sig = pthread_create(&sig_thread, NULL, signal_main, &d) == 0;
	int have_timer = !c->vol.readonly && c->commit_interval > 0 &&
			 pthread_create(&timer_thread, NULL, timer_main, &d) == 0;
	int have_anchor = v && !info.anchor_none && pthread_create(&anchor_thread, NULL, anchor_main, &d) == 0;
	if (v && !info.anchor_none && !have_anchor)
		fs_log(LOG_WARNING, "%s: no anchor re-check thread: a stale copy would not be noticed", c->mountpoint);
	if (!have_sig)
		fs_log(LOG_WARNING, "%s: no signal thread; unmount to stop", c->mountpoint);

	struct fuse_loop_config *lc = fuse_loop_cfg_create();
	if (lc) {
		fuse_loop_cfg_set_max_threads(lc, MAX_THREADS);
		fuse_loop_cfg_set_idle_threads(lc, 8);
	}
	int lrc = lc ? fuse_session_loop_mt(d.se, lc) : -ENOMEM;
	if (lc)
		fuse_loop_cfg_destroy(lc);
	d.loop_done = 1;
	if (lrc != 0)
		fs_log(LOG_WARNING, "%s: session ended: %s", c->mountpoint, strerror(lrc < 0 ? -lrc : lrc));

	if (have_sig) {
		pthread_cancel(sig_thread);
		pthread_join(sig_thread, NULL);
	}
	fuse_session_unmount(d.se);
	pthread_mutex_lock(&d.mu);
	d.stopping = 1;
	pthread_cond_broadcast(&d.cv);
	pthread_mutex_unlock(&d.mu);
	if (have_timer)
		pthread_join(timer_thread, NULL);
	if (have_anchor)
		pthread_join(anchor_thread, NULL);
	fsd_control_stop(ctl);
	status = FS_OK;
destroy_session:
	fuse_session_destroy(d.se);
close_volume:
	if (img) {
		int fst = fsi_close(img);
		if (fst && status == FS_OK) {
			fs_log(LOG_ERR, "%s: integrity violations were found while serving", c->mountpoint);
			status = fst;
		}
		if (status == FS_OK)
			fs_log(LOG_INFO, "%s: unmounted", c->mountpoint);
		goto done;
	}
	if (!c->vol.readonly) {
		int arc = fsv_commit_atime(v);
		if (arc < 0)
			fs_log(LOG_WARNING, "%s: the access times of this mount were not committed: %s", c->mountpoint,
			       strerror(-arc));
	}
	fsv_info(v, &info);
	int crc = fsv_close(v);
	if (crc < 0) {
		fs_log(LOG_ERR, "%s: final commit failed: %s", c->mountpoint, strerror(-crc));
		if (status == FS_OK)
			status = info.failed ? info.failed : crc == -ENOTCONN ? FS_ST_ANCHOR : FS_ST_IO;
	} else if (info.failed && status == FS_OK) {
		/* failed is 1 (FS_ST_TAMPER) for a violation; a library that records the status of the cause
		 * there (fork, anchor, I/O) gets it passed on unchanged. */
		fs_log(LOG_ERR, "%s: the volume was read-only after a failure (%s)", c->mountpoint,
		       fs_status_name(info.failed));
		status = info.failed;
	}
	if (status == FS_OK)
		fs_log(LOG_INFO, "%s: unmounted, everything committed", c->mountpoint);
done:
	state_close(&d, status);
	pthread_cond_destroy(&d.cv);
	pthread_mutex_destroy(&d.mu);
close_log:
	fs_log_set_sink(NULL);
	if (d.log_fd >= 0)
		close(d.log_fd);
	return status;
}

/* A daemon killed before its mount was ready: what it last logged is in its state file. */
static void quote_dead(const struct fsd_config *c, const char *how)
{
	char path[PATH_MAX];
	int fd = fsd_state_path(c->run_dir, c->mountpoint, path, sizeof(path), 0) == 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	fprintf(stderr, "fshield mount: the daemon died (%s)%s\n", how, fd >= 0 ? "; its last log lines:" : "");
	if (fd >= 0) {
		fsd_log_quote(fd, stderr);
		close(fd);
	}
}

/* A forked child shares the caller's pages but not their memory locks: the secrets read before the fork
 * (volume key or passphrase, fspf key) are locked again, so that they are not swapped out for the life of
 * the mount. */
static void relock_secrets(const struct fsd_config *c)
{
	if (c->vol.key)
		sodium_mlock((void *)c->vol.key, 32);
	if (c->vol.passphrase)
		sodium_mlock((void *)c->vol.passphrase, c->vol.passphrase_len);
	if (c->fspf_key)
		sodium_mlock((void *)c->fspf_key, 32);
}

int fsd_run(const struct fsd_config *c)
{
	if (c->foreground)
		return serve(c, -1);
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0) {
		fprintf(stderr, "fshield mount: pipe: %s\n", strerror(errno));
		return FS_ST_IO;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "fshield mount: fork: %s\n", strerror(errno));
		return FS_ST_IO;
	}
	if (pid == 0) {
		/* Keep nothing of the caller's but stdio: a long-lived daemon must not hold its files or locks. */
		close(p[0]);
		if (p[1] > 3)
			close_range(3, (unsigned)p[1] - 1, 0);
		close_range((unsigned)p[1] + 1, ~0U, 0);
		relock_secrets(c);
		_exit(serve(c, p[1]));
	}
	close(p[1]);
	char b;
	ssize_t n;
	do
		n = read(p[0], &b, 1);
	while (n < 0 && errno == EINTR);
	close(p[0]);
	if (n == 1)
		return FS_OK;
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return FS_ST_IO;
	if (WIFEXITED(st))
		return WEXITSTATUS(st) ? WEXITSTATUS(st) : FS_ST_IO;
	quote_dead(c, strsignal(WTERMSIG(st)));
	return FS_ST_IO;
}
