/* The one growable-array helper: VEC_PUSH(arr, n, cap, val) appends val, doubling the capacity (from 8)
 * as needed; it evaluates to 0, or -ENOMEM when memory ran out (arr, n and cap are then unchanged). */
#ifndef FS_COMMON_VEC_H
#define FS_COMMON_VEC_H
#include <errno.h>
#include <stdlib.h>

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
#endif
