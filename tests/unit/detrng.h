/* A deterministic random source for golden-vector tests: BLAKE2b-512 of a counter under a fixed seed.
 * detrng_start(seed) installs it (before sodium_init, or again later: libsodium calls through it) and
 * restarts the sequence. */
#ifndef FS_DETRNG_H
#define FS_DETRNG_H
#include <sodium.h>
#include <string.h>

#include "crypto/aead.h"

static uint64_t detrng_counter;
static uint8_t detrng_seed[32];

static void detrng_buf(void *const buf, const size_t size)
{
	uint8_t *p = buf;
	size_t done = 0;
	while (done < size) {
		uint8_t block[64], ctr[8];
		for (int i = 0; i < 8; i++)
			ctr[i] = (uint8_t)(detrng_counter >> (8 * i));
		detrng_counter++;
		crypto_generichash(block, sizeof(block), ctr, sizeof(ctr), detrng_seed, sizeof(detrng_seed));
		size_t k = size - done < sizeof(block) ? size - done : sizeof(block);
		memcpy(p + done, block, k);
		done += k;
	}
}
static uint32_t detrng_random(void)
{
	uint32_t r;
	detrng_buf(&r, sizeof(r));
	return r;
}
static const char *detrng_name(void) { return "golden"; }
static void detrng_stir(void) {}
static struct randombytes_implementation detrng_impl = {
	.implementation_name = detrng_name, .random = detrng_random, .stir = detrng_stir, .buf = detrng_buf,
};

/* seed: exactly 32 bytes (a 31-character string literal and its NUL). */
static inline void detrng_start(const char *seed)
{
	memcpy(detrng_seed, seed, 32);
	detrng_counter = 0;
	randombytes_set_implementation(&detrng_impl);
	fs_aead_nonce_pool_empty(); /* nonces drawn before now came from another sequence */
}
#endif
