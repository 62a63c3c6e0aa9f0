/* One log for the whole program: the daemon points it at syslog or a file, commands leave it on stderr. */
#include <stdarg.h>
#include <stdio.h>

#include "meta/common/log.h"

static fs_log_fn log_sink;

void fs_log_set_sink(fs_log_fn fn)
{
	log_sink = fn;
}

void fs_log(int prio, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_sink)
		log_sink(prio, msg);
	else
		fprintf(stderr, "fshield: %s\n", msg);
}
