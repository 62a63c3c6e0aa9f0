/* The daemon's log: where its lines go, and the last lines it keeps in its state file so that
 * "fshield umount" and "fshield mount" can quote them when the daemon ended with an error. */
#ifndef FS_FUSE_DLOG_H
#define FS_FUSE_DLOG_H
#include <stddef.h>
#include <stdio.h>

/* How many of the last lines the state file keeps. */
#define FSD_LOG_KEEP 10

/* Opens (creates, mode 0600) the log file for appending, without following a symbolic link; refuses
 * anything but a regular file owned by this user and closed to group and others. Returns the descriptor,
 * or -1 with the reason in err. */
int fsd_log_file_open(const char *path, char *err, size_t errlen);

/* Whether standard error is systemd's journal ($JOURNAL_STREAM names it; or, started by systemd
 * ($INVOCATION_ID), a pipe or socket). */
int fsd_log_stderr_is_journal(void);

/* Makes fs_log go through the daemon's sink: to log_fd (or -1), to standard error while attached or when it
 * is the journal, else to syslog; and into the state file (state_fd, or -1) after head, as "log LINE". */
void fsd_log_start(int log_fd, int journal, int state_fd, const char *head);

/* After the daemon detached from its caller: standard error is gone unless it is the journal. */
void fsd_log_detached(void);

/* Records a line that was already printed on standard error (a refused mount): the log file and the
 * state file get it. */
void fsd_log_record(const char *msg);

/* Stops writing into the state file (before its owner writes the exit status and closes it). */
void fsd_log_state_done(void);

/* Prints the "log" lines of a state file to out, each indented; returns how many. */
int fsd_log_quote(int state_fd, FILE *out);
#endif
