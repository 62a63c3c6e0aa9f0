#include "crypto/passin.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "crypto/keys.h"

enum { PASS_CAP = 4096 };

/* The terminal's settings while echo is off, for a signal that ends the process meanwhile: it must not
 * leave the terminal silent. */
static int tty_fd = -1;
static struct termios tty_saved;
static const int tty_signals[] = { SIGINT, SIGTERM, SIGQUIT, SIGHUP };
#define NSIG_TTY (sizeof(tty_signals) / sizeof(tty_signals[0]))

static void restore_and_die(int sig)
{
	if (tty_fd >= 0)
		tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* One line from the terminal fd, echo off, into locked memory. */
static int read_line_noecho(int fd, const char *prompt, char **pass, size_t *len, char *err, size_t errlen)
{
	struct termios quiet;
	struct sigaction prev[NSIG_TTY];
	int have_tc = tcgetattr(fd, &tty_saved) == 0;
	if (have_tc) {
		struct sigaction sa = { .sa_handler = restore_and_die };
		sigemptyset(&sa.sa_mask);
		tty_fd = fd;
		for (size_t i = 0; i < NSIG_TTY; i++)
			sigaction(tty_signals[i], &sa, &prev[i]);
		quiet = tty_saved;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		tcsetattr(fd, TCSAFLUSH, &quiet);
	}
	if (write(fd, prompt, strlen(prompt)) < 0) {
		/* the prompt is a courtesy; reading still works */
	}
	char *buf = sodium_malloc(PASS_CAP);
	size_t n = 0;
	int rc = buf ? 0 : -1;
	while (buf) {
		char ch;
		ssize_t r = read(fd, &ch, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || ch == '\n' || ch == '\r')
			break;
		if (n + 1 >= PASS_CAP) {
			rc = -1;
			continue; /* read the rest of the line away */
		}
		buf[n++] = ch;
	}
	if (have_tc) {
		tcsetattr(fd, TCSAFLUSH, &tty_saved);
		for (size_t i = 0; i < NSIG_TTY; i++)
			sigaction(tty_signals[i], &prev[i], NULL);
		tty_fd = -1;
	}
	if (write(fd, "\n", 1) < 0) {
		/* as above */
	}
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (rc || n == 0) {
		snprintf(err, errlen, rc ? "passphrase too long (at most %d bytes)" : "empty passphrase", PASS_CAP - 1);
		sodium_free(buf);
		return -1;
	}
	buf[n] = 0;
	*pass = buf;
	*len = n;
	return 0;
}

int fs_pass_prompt(const char *prompt, int confirm, char **pass, size_t *len, char *err, size_t errlen)
{
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(err, errlen, "no terminal to ask for the passphrase (/dev/tty: %s): give --passphrase-file F, "
				      "--extpass CMD or --key-file F", strerror(errno));
		return -1;
	}
	int rc = -1;
	for (int tries = 0; tries < 3; tries++) {
		char *a, *b;
		size_t la, lb;
		if (read_line_noecho(fd, prompt, &a, &la, err, errlen) != 0)
			break;
		if (!confirm) {
			*pass = a, *len = la, rc = 0;
			break;
		}
		if (read_line_noecho(fd, "Repeat the passphrase: ", &b, &lb, err, errlen) != 0) {
			fs_passphrase_free(a, la);
			break;
		}
		int same = la == lb && sodium_memcmp(a, b, la) == 0;
		fs_passphrase_free(b, lb);
		if (same) {
			*pass = a, *len = la, rc = 0;
			break;
		}
		fs_passphrase_free(a, la);
		snprintf(err, errlen, "the two passphrases differ (three times): nothing was changed");
		static const char again[] = "The two passphrases differ; try again.\n";
		if (write(fd, again, sizeof(again) - 1) < 0) {
			/* as above */
		}
	}
	close(fd);
	return rc;
}

int fs_pass_extpass(const char *cmd, char **pass, size_t *len, char *err, size_t errlen)
{
	char *copy = strdup(cmd);
	char *argv[64];
	int argc = 0;
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (char *save = NULL, *t = strtok_r(copy, " ", &save); t && argc < 63; t = strtok_r(NULL, " ", &save))
		argv[argc++] = t;
	argv[argc] = NULL;
	if (argc == 0) {
		free(copy);
		snprintf(err, errlen, "--extpass: empty command");
		return -1;
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0) {
		free(copy);
		snprintf(err, errlen, "--extpass: pipe: %s", strerror(errno));
		return -1;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		execvp(argv[0], argv);
		fprintf(stderr, "fshield: --extpass %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	int e = errno;
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		free(copy);
		snprintf(err, errlen, "--extpass: fork: %s", strerror(e));
		return -1;
	}
	const char *why = NULL;
	int rrc = fs_passphrase_read_fd(p[0], pass, len, &why);
	close(p[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	int rc = 0;
	if (WIFSIGNALED(st))
		rc = -1, snprintf(err, errlen, "--extpass %s was killed by signal %d", argv[0], WTERMSIG(st));
	else if (WEXITSTATUS(st) != 0)
		rc = -1, snprintf(err, errlen, "--extpass %s exited with status %d", argv[0], WEXITSTATUS(st));
	else if (rrc != 0)
		rc = -1, snprintf(err, errlen, "--extpass %s: %s", argv[0],
				  rrc == -EINVAL && why && !strcmp(why, "empty passphrase") ? "printed no passphrase" : why);
	if (rc && rrc == 0)
		fs_passphrase_free(*pass, *len);
	free(copy);
	return rc;
}
