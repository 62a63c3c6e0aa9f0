/* The growable-array helpers: VEC_PUSH(arr, n, cap, val) appends val, doubling the capacity (from 8)
 * as needed; it evaluates to 0, or -ENOMEM when memory ran out (arr, n and cap are then unchanged).
 * vec_append_bytes is the same for byte buffers that grow by a run of bytes at a time. */
#ifndef FS_COMMON_VEC_H
#define FS_COMMON_VEC_H
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define VEC_PUSH(arr, n, cap, val)                                                         \
	({                                                                                 \
		int _ok = 1;                                                               \
		if ((n) == (cap)) {                                                        \
			size_t _nc = (cap) ? (cap) * 2 : 8;                                \
			void *_np = realloc((arr), _nc * sizeof(*(arr)));                  \
			if (_np) {                                                         \
				(arr) = _np;                                               \
				(cap) = _nc;                                               \
			} else {                                                           \
				_ok = 0;                                                   \
			}                                                                  \
		}                                                                          \
		if (_ok)                                                                   \
			(arr)[(n)++] = (val);                                              \
		_ok ? 0 : -ENOMEM;                                                         \
	})

/* Appends len bytes to (*p, *n, *cap) and keeps (*p)[*n] == 0, so that the buffer reads as a string;
 * 0, or -ENOMEM with the buffer unchanged. */
static inline int vec_append_bytes(char **p, size_t *n, size_t *cap, const void *src, size_t len)
{
	if (*n + len + 1 > *cap) {
		size_t nc = *cap ? *cap : 64;
		while (nc < *n + len + 1)
			nc *= 2;
		char *g = realloc(*p, nc);
		if (!g)
			return -ENOMEM;
		*p = g;
		*cap = nc;
	}
	memcpy(*p + *n, src, len);
	*n += len;
	(*p)[*n] = 0;
	return 0;
}
#endif
