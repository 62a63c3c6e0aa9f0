/* What the harnesses share: the input cursor, a stop the fuzzer reports as a crash, and a start that
 * readies the crypto library. Each harness is its own program, so everything here is static.
 *
 * Before including: FUZZ_NAME (the harness's name, for fail's message) gives fail(); FUZZ_SETUP (the
 * name of a static void function of the harness) gives an LLVMFuzzerInitialize that runs fs_crypto_init,
 * then that function. */
#ifndef TESTS_FUZZ_FUZZ_H
#define TESTS_FUZZ_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keys.h"

/* Input cursor: reads past the end yield zeros. */
typedef struct {
	const uint8_t *p;
	size_t n, off;
} cur;

static inline uint8_t rd8(cur *c)
{
	return c->off < c->n ? c->p[c->off++] : 0;
}

/* Copies up to want bytes (as many as are left); returns how many. */
static inline size_t rdbytes(cur *c, uint8_t *out, size_t want)
{
	size_t k = want < c->n - c->off ? want : c->n - c->off;
	memcpy(out, c->p + c->off, k);
	c->off += k;
	return k;
}

/* Fills out with the next len bytes, zeros past the end. */
static inline void rd(cur *c, void *out, size_t len)
{
	memset(out, 0, len);
	rdbytes(c, out, len);
}

/* Points at the next *want bytes in place, cutting *want to what is left. */
static inline const uint8_t *take(cur *c, size_t *want)
{
	if (*want > c->n - c->off)
		*want = c->n - c->off;
	const uint8_t *p = c->p + c->off;
	c->off += *want;
	return p;
}

/* key[i] = first + step * i: fixed keys, so that the seed inputs made under them stay valid. */
static inline void fuzz_key(uint8_t key[32], unsigned first, unsigned step)
{
	for (unsigned i = 0; i < 32; i++)
		key[i] = (uint8_t)(first + step * i);
}

#ifdef FUZZ_NAME
static inline void __attribute__((noreturn)) fail(const char *what)
{
	fprintf(stderr, FUZZ_NAME ": %s\n", what);
	abort();
}
#endif

#ifdef FUZZ_SETUP
static void FUZZ_SETUP(void);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (fs_crypto_init() != 0)
		fail("crypto init");
	FUZZ_SETUP();
	return 0;
}
#endif

#endif
