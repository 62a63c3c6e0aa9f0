#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tools/rundir.h"

const char *run_dir(char *buf, size_t size)
{
	const char *env = getenv("FSHIELD_RUN_DIR"), *xdg = getenv("XDG_RUNTIME_DIR");
	int n;
	if (env && *env)
		n = snprintf(buf, size, "%s", env);
	else if (geteuid() == 0)
		n = snprintf(buf, size, "/run/fshield");
	else if (xdg && *xdg)
		n = snprintf(buf, size, "%s/fshield", xdg);
	else
		n = snprintf(buf, size, "/tmp/fshield-%u", (unsigned)geteuid());
	return n < 0 || (size_t)n >= size ? NULL : buf;
}
