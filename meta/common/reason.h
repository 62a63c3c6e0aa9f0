/* One way to report a failure: a one-line reason into the caller's buffer, and the code to return, so that
 * `return fs_reason(err, errlen, -EIO, "...")` reports and fails in one step. */
#ifndef FS_COMMON_REASON_H
#define FS_COMMON_REASON_H
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

static inline int fs_reason(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static inline int fs_reason(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}
#endif
