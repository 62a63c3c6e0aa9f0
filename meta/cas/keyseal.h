/* Volume keys at rest in the CAS store (docs/CAS.md, "Keys at rest"): every key is sealed under the CAS
 * master key, which is never in the store, and bound to the name of the row it belongs to. */
#ifndef FS_CAS_KEYSEAL_H
#define FS_CAS_KEYSEAL_H
#include <stddef.h>
#include <stdint.h>

/* version byte 1 || nonce (24) || XChaCha20-Poly1305 of the 32-byte key || tag (16) */
#define CAS_SEALED_KEY_BYTES (1 + 24 + 32 + 16)

/* The master key file (64 hex digits, as `fshield keygen` writes them) into key, which the caller
 * allocated in locked memory (fs_key_alloc). A file that is not a regular file of the caller's, or that
 * its group or others may read, is refused. 0 or -errno with the reason in err. */
int cas_master_key_file(const char *path, uint8_t key[32], char *err, size_t errlen);

/* The check value the store keeps of its master key: a keyed hash, from which the key cannot be found,
 * that tells a wrong master key from a right one before any row is opened. */
void cas_master_check(uint8_t check[32], const uint8_t master[32]);

/* Seals key for the row named name (a volume "NS/SESSION/VOLUME"). */
void cas_key_seal(uint8_t out[CAS_SEALED_KEY_BYTES], const uint8_t master[32], const char *name,
		  const uint8_t key[32]);
/* Opens a sealed key of the row named name: 0, or -EBADMSG if it was sealed under another master key,
 * for another row, or altered (key zeroed). */
int cas_key_open(uint8_t key[32], const uint8_t master[32], const char *name, const uint8_t *in, size_t len);
#endif
