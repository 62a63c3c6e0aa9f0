/* Keys: 256-bit keys in locked memory, key files,
 * passphrase wrapping (Argon2id), and memory hygiene for all of them. */
#ifndef FS_KEYS_H
#define FS_KEYS_H
#include <stddef.h>
#include <stdint.h>

/* Associated data bound into a wrapped key (the volume id for volume keys). */
#define FS_WRAP_AD_BYTES 16

/* Call once before anything else: libsodium init, no core dumps of this process. */
int fs_crypto_init(void);

/* Key memory: guarded, locked (no swap), excluded from core dumps, wiped on free. */
uint8_t *fs_key_alloc(void);
void fs_key_free(uint8_t *k);


/* Key files hold 64 hex digits (and an optional newline); one that group or others may read is refused.
 * Returns 0 or -errno; *why says what is wrong. */
int fs_key_read_file(const char *path, uint8_t key[32], const char **why);
/* The same from an open file descriptor, read to its end (left open: the caller closes it). */
int fs_key_read_fd(int fd, uint8_t key[32], const char **why);
/* For a failure of fs_key_read_* or fs_passphrase_read_*: 1 when the file could not be read (missing,
 * permission denied, an I/O error): an I/O error to report as such; 0 when what it holds or its mode is
 * wrong (-EINVAL, -EPERM): the operator must fix the file, a usage error. */
int fs_secret_unreadable(int rc);
/* Writes a fresh random key as hex to path (created 0600, must not exist), or to stdout if path is NULL. */
int fs_key_generate_file(const char *path);

/* Passphrases. */
#define FS_SALT_BYTES 16
typedef struct {
	uint64_t opslimit, memlimit;
	uint8_t salt[FS_SALT_BYTES];
} fs_kdf_params;
void fs_kdf_params_default(fs_kdf_params *p);
/* The Argon2id costs accepted (docs/FORMAT.md 3.2). A volume header's are read before anything can
 * authenticate them, so they are bounded by what one open may cost: at most libsodium's "sensitive"
 * work (4 passes over 1 GiB), whatever a planted header asks for. */
#define FS_KDF_OPSLIMIT_MIN 1
#define FS_KDF_OPSLIMIT_MAX 16
#define FS_KDF_MEMLIMIT_MIN 8192
#define FS_KDF_MEMLIMIT_MAX ((uint64_t)1 << 30)
#define FS_KDF_WORK_MAX ((uint64_t)4 << 30) /* opslimit × memlimit, bytes */
/* Whether p's costs are within those bounds. */
int fs_kdf_params_ok(const fs_kdf_params *p);
/* Reads a passphrase file (first line, without its newline) into locked memory. A regular file that
 * group or others may read is refused (crypto/secret_mode.h), as is a key file. */
int fs_passphrase_read_file(const char *path, char **pass, size_t *len, const char **why);
/* The same from an open descriptor, read to its end (left open). */
int fs_passphrase_read_fd(int fd, char **pass, size_t *len, const char **why);
void fs_passphrase_free(char *pass, size_t len);
/* kek = Argon2id(pass, params). Returns 0 or -1 (out of memory or parameters out of range). */
int fs_passphrase_kek(uint8_t kek[32], const char *pass, size_t len, const fs_kdf_params *p);
/* Wraps the master key: XChaCha20-Poly1305 under kek, ad = volume id. wrapped = nonce24 || ct32 || tag16. */
#define FS_WRAPPED_BYTES (24 + 32 + 16)
void fs_key_wrap(uint8_t wrapped[FS_WRAPPED_BYTES], const uint8_t kek[32], const uint8_t master[32],
		 const uint8_t ad[FS_WRAP_AD_BYTES]);
int fs_key_unwrap(uint8_t master[32], const uint8_t kek[32], const uint8_t wrapped[FS_WRAPPED_BYTES],
		  const uint8_t ad[FS_WRAP_AD_BYTES]);

/* Hex helpers. */
void fs_hex(char *out, const uint8_t *in, size_t n); /* out has 2n+1 bytes */
int fs_unhex(uint8_t *out, size_t n, const char *in); /* exactly 2n hex digits; 0 or -1 */
#endif
