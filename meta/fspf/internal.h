/* What the files of meta/fspf share and the public header does not say: error messages, the checks that
 * both the parser and the editors apply, and the manifest's key schedule. */
#ifndef FS_FSPF_INTERNAL_H
#define FS_FSPF_INTERNAL_H
#include <stdarg.h>
#include <stdio.h>

#include "meta/fspf/fspf.h"

static inline void fspf_seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline void fspf_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Chunk sizes the format allows: a power of two from 4096 to 1 MiB. */
static inline int fspf_chunk_size_ok(uint32_t cs)
{
	return cs >= 4096 && cs <= (1u << 20) && !(cs & (cs - 1));
}

static inline int fspf_kind_ok(int kind)
{
	return kind >= FSPF_ENCRYPTED && kind <= FSPF_NOT_PROTECTED;
}

/* Whether the len bytes at p (not NUL-terminated) are a path as fspf_path_normalize writes it. */
int fspf_path_is_normal(const char *p, size_t len);

/* K_p of the manifest key (FSPF_SUB_*). */
void fspf_subkey(uint8_t out[32], const uint8_t key[32], const uint8_t id[FSPF_ID_BYTES], uint8_t p);
/* Installs key (and K_files) in m, whose id must be set. 0 or -ENOMEM. */
int fspf_set_key(fspf *m, const uint8_t key[32]);
/* Writes all n bytes (retrying short writes). 0 or -errno. */
int fspf_full_write(int fd, const void *buf, size_t n);
#endif
