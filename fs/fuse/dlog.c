/* The daemon's log sink (see dlog.h). One daemon per process, so the state is static; lines may come from
 * any thread, hence the lock. Log volume is low (notices and errors), so the state file is rewritten with
 * every line: its tail is then current even if the daemon is killed. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "fs/fuse/dlog.h"
#include "meta/common/log.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1, state_fd = -1, journal, attached = 1;
static char *state_head;
static char keep[FSD_LOG_KEEP][1024];
static unsigned kept, next_slot;

int fsd_log_file_open(const char *path, char *err, size_t errlen)
{
	/* O_NONBLOCK: a FIFO planted there must not hang the mount (it is refused below). */
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "log file %s: %s", path,
			 errno == ELOOP ? "is a symbolic link (refused: name the file itself)" : strerror(errno));
		return -1;
	}
	struct stat st;
	const char *why = NULL;
	if (fstat(fd, &st) != 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (st.st_uid != geteuid())
		why = "owned by another user (remove it, or name a file of your own)";
	else if (st.st_mode & 077)
		why = "readable or writable by group or others (run chmod 600 on it)";
	if (why) {
		snprintf(err, errlen, "log file %s: %s", path, why);
		close(fd);
		return -1;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return fd;
}

int fsd_log_stderr_is_journal(void)
{
	struct stat st;
	if (fstat(STDERR_FILENO, &st) != 0)
		return 0;
	const char *js = getenv("JOURNAL_STREAM"), *inv = getenv("INVOCATION_ID");
	unsigned long long dev, ino;
	if (js && *js)
		return sscanf(js, "%llu:%llu", &dev, &ino) == 2 && dev == (unsigned long long)st.st_dev &&
		       ino == (unsigned long long)st.st_ino;
	return inv && *inv && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
}

static const char *prio_name(int prio)
{
	static const char *const names[] = { "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug" };
	return names[prio & 7];
}

/* The state file: its head, then the kept lines, oldest first. Called with mu held. */
static void state_rewrite(void)
{
	if (state_fd < 0)
		return;
	size_t cap = strlen(state_head) + FSD_LOG_KEEP * (sizeof(keep[0]) + 8), n = 0;
	char *buf = malloc(cap);
	if (!buf)
		return;
	n += (size_t)snprintf(buf, cap, "%s", state_head);
	for (unsigned i = 0; i < kept; i++) {
		unsigned slot = (next_slot + FSD_LOG_KEEP - kept + i) % FSD_LOG_KEEP;
		n += (size_t)snprintf(buf + n, cap - n, "log %s\n", keep[slot]);
	}
	if (pwrite(state_fd, buf, n, 0) == (ssize_t)n && ftruncate(state_fd, (off_t)n) == 0) {
		/* written */
	}
	free(buf);
}

/* Keeps msg for the state file, with control characters replaced: a name in a log line must not turn
 * into one line more, or into terminal escapes where umount prints it. Called with mu held. */
static void keep_line(const char *msg)
{
	char *dst = keep[next_slot];
	size_t i = 0;
	for (; msg[i] && i < sizeof(keep[0]) - 1; i++)
		dst[i] = ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f) ? '?' : msg[i];
	dst[i] = '\0';
	next_slot = (next_slot + 1) % FSD_LOG_KEEP;
	if (kept < FSD_LOG_KEEP)
		kept++;
	state_rewrite();
}

static void to_file(int prio, const char *msg)
{
	if (log_fd < 0)
		return;
	char stamp[32], line[1200];
	time_t now = time(NULL);
	struct tm tm;
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	int n = snprintf(line, sizeof(line), "%s fshield[%ld]: %s: %s\n", stamp, (long)getpid(), prio_name(prio), msg);
	if (n > 0 && (size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1, line[n - 1] = '\n';
	if (n > 0 && write(log_fd, line, (size_t)n) != n) {
		/* nowhere to report it */
	}
}

static void sink(int prio, const char *msg)
{
	pthread_mutex_lock(&mu);
	to_file(prio, msg);
	if (journal)
		fprintf(stderr, "<%d>%s\n", prio & 7, msg); /* sd-daemon(3): the journal reads the priority */
	else if (attached)
		fprintf(stderr, "fshield: %s\n", msg);
	else if (log_fd < 0)
		syslog(prio, "%s", msg);
	keep_line(msg);
	pthread_mutex_unlock(&mu);
}

void fsd_log_start(int lfd, int jrnl, int sfd, const char *head)
{
	pthread_mutex_lock(&mu);
	log_fd = lfd;
	journal = jrnl;
	state_fd = sfd;
	free(state_head);
	state_head = strdup(head ? head : "");
	if (!state_head)
		state_fd = -1;
	state_rewrite();
	pthread_mutex_unlock(&mu);
	fs_log_set_sink(sink);
}

void fsd_log_detached(void)
{
	pthread_mutex_lock(&mu);
	attached = 0;
	if (!journal && log_fd < 0)
		openlog("fshield", LOG_PID, LOG_DAEMON);
	pthread_mutex_unlock(&mu);
}

void fsd_log_record(const char *msg)
{
	pthread_mutex_lock(&mu);
	to_file(LOG_ERR, msg);
	keep_line(msg);
	pthread_mutex_unlock(&mu);
}

void fsd_log_state_done(void)
{
	pthread_mutex_lock(&mu);
	state_fd = -1;
	pthread_mutex_unlock(&mu);
}

int fsd_log_quote(int fd, FILE *out)
{
	size_t cap = 64 * 1024;
	char *buf = malloc(cap);
	if (!buf)
		return 0;
	ssize_t n = pread(fd, buf, cap - 1, 0);
	int lines = 0;
	buf[n > 0 ? n : 0] = '\0';
	for (char *line = buf, *end; line && *line; line = end ? end + 1 : NULL) {
		end = strchr(line, '\n');
		if (end)
			*end = '\0';
		if (!strncmp(line, "log ", 4)) {
			fprintf(out, "    %s\n", line + 4);
			lines++;
		}
	}
	free(buf);
	return lines;
}
