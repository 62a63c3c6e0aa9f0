/* The progress line (meta/common/progress.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "meta/common/progress.h"

struct fs_progress {
	int fd, tty, reported, shown;
	const char *command, *unit, *step;
	uint64_t items, items_total, bytes, bytes_total;
	double start, last;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

fs_progress *fs_progress_new(enum fs_progress_mode mode, int fd, const char *command, const char *unit)
{
	int tty = isatty(fd);
	if (mode == FS_PROGRESS_OFF || (mode == FS_PROGRESS_AUTO && !tty))
		return NULL;
	fs_progress *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->fd = fd;
	p->tty = tty;
	p->command = command;
	p->unit = unit;
	p->start = now();
	p->last = -1;
	return p;
}

void fs_progress_step(fs_progress *p, const char *step)
{
	if (!p)
		return;
	p->step = step;
	p->start = now(); /* the rate and the time left are the step's */
}

static void human(char *buf, size_t n, double v)
{
	static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int i = 0;
	while (v >= 1024 && i < 4)
		v /= 1024, i++;
	if (i == 0)
		snprintf(buf, n, "%.0f %s", v, u[i]);
	else
		snprintf(buf, n, "%.1f %s", v, u[i]);
}

static void write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* progress is not worth failing for */
		s += w;
		n -= (size_t)w;
	}
}

static void draw(fs_progress *p, double t)
{
	char line[512], done[32], total[32], rate[32], left[32] = "";
	size_t n = 0;
	double el = t - p->start;
	if (el < 1e-3)
		el = 1e-3;
	double r = (double)p->bytes / el;
	human(done, sizeof(done), (double)p->bytes);
	human(rate, sizeof(rate), r);
	if (p->bytes_total) {
		human(total, sizeof(total), (double)p->bytes_total);
		if (p->bytes < p->bytes_total && r > 0) {
			unsigned long s = (unsigned long)(((double)(p->bytes_total - p->bytes)) / r + 0.5);
			snprintf(left, sizeof(left), ", %lu:%02lu left", s / 60, s % 60);
		} else if (p->bytes >= p->bytes_total) {
			snprintf(left, sizeof(left), ", 0:00 left");
		}
	}
	n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s: %s%s", p->tty ? "\r\033[K" : "", p->command,
			      p->step ? p->step : "", p->step ? " " : "");
	if (p->items_total)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%llu/%llu %s", (unsigned long long)p->items,
				      (unsigned long long)p->items_total, p->unit);
	else
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%llu %s", (unsigned long long)p->items, p->unit);
	if (p->bytes_total)
		n += (size_t)snprintf(line + n, sizeof(line) - n, ", %s/%s", done, total);
	else
		n += (size_t)snprintf(line + n, sizeof(line) - n, ", %s", done);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ", %s/s%s%s", rate, left, p->tty ? "" : "\n");
	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	write_all(p->fd, line, n);
	p->last = t;
	p->shown = 1;
}

void fs_progress_report(void *ctx, uint64_t items, uint64_t items_total, uint64_t bytes, uint64_t bytes_total)
{
	fs_progress *p = ctx;
	if (!p)
		return;
	p->items = items;
	p->items_total = items_total;
	p->bytes = bytes;
	p->bytes_total = bytes_total;
	p->reported = 1;
	double t = now();
	if (p->last < 0 || t - p->last >= (p->tty ? 0.25 : 1.0))
		draw(p, t);
}

void fs_progress_clear(fs_progress *p)
{
	if (p && p->tty && p->shown) {
		write_all(p->fd, "\r\033[K", 4);
		p->shown = 0;
	}
}

void fs_progress_end(fs_progress *p)
{
	if (!p)
		return;
	if (p->reported) { /* the final counts, then a terminal's line is cleared */
		draw(p, now());
		if (p->tty)
			write_all(p->fd, "\r\033[K", 4);
	}
	free(p);
}

void fs_progress_cancel(fs_progress *p)
{
	fs_progress_clear(p);
	free(p);
}
