/* Progress of a long command (verify, fspf addf, image) on standard error. The library code only reports
 * counts through an fs_progress_fn; the commands draw them with an fs_progress. On a terminal the line is
 * redrawn in place at most four times a second and cleared at the end; otherwise nothing is printed
 * unless forced, and then one plain line at most once a second (a log has no carriage returns). */
#ifndef FS_PROGRESS_H
#define FS_PROGRESS_H
#include <stdint.h>

/* What a library reports: done and total items and bytes (a total of 0: not known yet). Called often;
 * the receiver decides when to draw. */
typedef void (*fs_progress_fn)(void *ctx, uint64_t items, uint64_t items_total, uint64_t bytes,
			       uint64_t bytes_total);

enum fs_progress_mode { FS_PROGRESS_AUTO, FS_PROGRESS_FORCE, FS_PROGRESS_OFF };

typedef struct fs_progress fs_progress;

/* A progress display on fd for a command (the line's first word) counting unit ("chunks", "entries").
 * AUTO draws only when fd is a terminal. NULL when nothing is to be drawn (or out of memory): every
 * function below accepts NULL and does nothing. */
fs_progress *fs_progress_new(enum fs_progress_mode mode, int fd, const char *command, const char *unit);
/* Starts a step named step (a path, "extracting"; NULL: none): the counts that follow, their rate and
 * the time left are the step's. */
void fs_progress_step(fs_progress *p, const char *step);
/* An fs_progress_fn: ctx is the fs_progress. */
void fs_progress_report(void *ctx, uint64_t items, uint64_t items_total, uint64_t bytes, uint64_t bytes_total);
/* Clears a terminal's line before other output to the same terminal; the next report draws it again. */
void fs_progress_clear(fs_progress *p);
/* Draws the final counts when anything was reported (a terminal's line is then cleared) and frees p. */
void fs_progress_end(fs_progress *p);
/* Clears a terminal's line and frees p without the final counts (the command failed). */
void fs_progress_cancel(fs_progress *p);
#endif
