/*
 * die() for the test programs: print "NAME: message" to standard error and
 * exit with the given status.  Define TOOL_NAME before including this file.
 */
#ifndef FSHIELD_TESTS_TOOLS_DIE_H
#define FSHIELD_TESTS_TOOLS_DIE_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef TOOL_NAME
#error "define TOOL_NAME before including die.h"
#endif

static void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs(TOOL_NAME ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(status);
}

#endif
