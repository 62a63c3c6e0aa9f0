/* Random nonces without a system call each: a per-thread pool of random bytes, refilled from the system's
 * generator (randombytes_buf) 4 KiB at a time, hands out FS_NONCE_BYTES per nonce. The bytes are the
 * generator's own, so nonces are exactly as random as one draw each; only the number of getrandom calls
 * changes (one per 170 nonces instead of one per chunk sealed). A forked child starts with an empty pool:
 * it never hands out a nonce its parent may also hand out. */
#include <pthread.h>
#include <sodium.h>
#include <string.h>

#include "crypto/aead.h"

#define POOL_BYTES 4096

static __thread uint8_t pool[POOL_BYTES];
static __thread size_t pool_used = POOL_BYTES; /* all used: refill first */

static void empty_pool(void)
{
	sodium_memzero(pool, sizeof(pool));
	pool_used = POOL_BYTES;
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, empty_pool);
}

void fs_aead_random_nonce(uint8_t nonce[FS_NONCE_BYTES])
{
	pthread_once(&atfork_once, register_atfork);
	if (POOL_BYTES - pool_used < FS_NONCE_BYTES) {
		randombytes_buf(pool, sizeof(pool));
		pool_used = 0;
	}
	memcpy(nonce, pool + pool_used, FS_NONCE_BYTES);
	sodium_memzero(pool + pool_used, FS_NONCE_BYTES); /* handed out once */
	pool_used += FS_NONCE_BYTES;
}

void fs_aead_nonce_pool_empty(void)
{
	empty_pool();
}
