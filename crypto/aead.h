/* Chunk and row sealing: an AEAD per volume, chosen at init and recorded in the header. */
#ifndef FS_AEAD_H
#define FS_AEAD_H
#include <stddef.h>
#include <stdint.h>

enum fs_aead_alg {
	FS_AEAD_AES256GCM = 1,          /* OpenSSL EVP; needs AES instructions to be fast */
	FS_AEAD_XCHACHA20POLY1305 = 2,  /* libsodium; constant-time everywhere */
};

#define FS_KEY_BYTES   32
#define FS_NONCE_BYTES 24  /* stored nonce size; AES-GCM uses the first 12 bytes */
#define FS_TAG_BYTES   16

typedef struct fs_aead fs_aead;

/* AES-256-GCM where the CPU has AES instructions, XChaCha20-Poly1305 otherwise. */
int fs_aead_default_alg(void);
const char *fs_aead_alg_name(int alg);
int fs_aead_alg_valid(int alg);
/* Bytes of the stored nonce that the algorithm uses (12 or 24). */
size_t fs_aead_nonce_len(int alg);
/* The most seals one key of the algorithm may make with random nonces (docs/FORMAT.md section 5):
 * 2^32 for AES-256-GCM's 96-bit IVs (collision probability under 2^-32), no practical bound (UINT64_MAX)
 * for XChaCha20-Poly1305's 192-bit nonces. */
#define FS_AEAD_GCM_MAX_SEALS ((uint64_t)1 << 32)
uint64_t fs_aead_max_seals(int alg);

/* A keyed context. Not safe for concurrent use: one per thread or per locked owner. */
fs_aead *fs_aead_new(int alg, const uint8_t key[FS_KEY_BYTES]);
void fs_aead_free(fs_aead *a);

/* Fills nonce[0..FS_NONCE_BYTES) with fresh random bytes, from a per-thread pool of the system
 * generator's output (crypto/nonce.c). */
void fs_aead_random_nonce(uint8_t nonce[FS_NONCE_BYTES]);
/* Drops the calling thread's pool: the next nonce draws from the generator (tests that replace it). */
void fs_aead_nonce_pool_empty(void);

/* ct may equal pt. Returns 0, or -1 on an internal error. */
int fs_aead_seal(fs_aead *a, const uint8_t nonce[FS_NONCE_BYTES], const uint8_t *ad, size_t adlen,
		 const uint8_t *pt, size_t len, uint8_t *ct, uint8_t tag[FS_TAG_BYTES]);
/* pt may equal ct. Returns 0, or -1 when authentication fails (pt is then zeroed). */
int fs_aead_open(fs_aead *a, const uint8_t nonce[FS_NONCE_BYTES], const uint8_t *ad, size_t adlen,
		 const uint8_t *ct, size_t len, const uint8_t tag[FS_TAG_BYTES], uint8_t *pt);

#endif
