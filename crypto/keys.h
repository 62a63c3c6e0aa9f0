/* Volume keys: the 256-bit master key, the per-purpose subkeys derived from it, key files,
 * passphrase wrapping (Argon2id), and memory hygiene for all of them. */
#ifndef FS_KEYS_H
#define FS_KEYS_H
#include <stddef.h>
#include <stdint.h>

#define FS_VOLID_BYTES 16

/* Subkey purposes; never one key for two jobs. */
enum fs_subkey {
	FS_SUBKEY_CHUNK = 1,  /* parent of the per-file chunk AEAD keys */
	FS_SUBKEY_TREE = 2,   /* leaf, bucket, node and root hashes */
	FS_SUBKEY_NAME = 3,   /* keyed MAC of directory entry names (lookup index) */
	FS_SUBKEY_ROW = 4,    /* AEAD of inode and directory entry rows */
	FS_SUBKEY_HEADER = 5, /* MAC of volume.hdr */
	FS_SUBKEY_CHECK = 6,  /* key check value in volume.hdr (tells a wrong key from a tampered header) */
};

/* Call once before anything else: libsodium init, no core dumps of this process. */
int fs_crypto_init(void);

/* Key memory: guarded, locked (no swap), excluded from core dumps, wiped on free. */
uint8_t *fs_key_alloc(void);
void fs_key_free(uint8_t *k);

/* subkey = BLAKE2b-256(key = master, 0x0c || purpose || volume id). */
void fs_derive_subkey(uint8_t out[32], const uint8_t master[32], enum fs_subkey purpose,
		      const uint8_t volid[FS_VOLID_BYTES]);
/* Per-file chunk key = BLAKE2b-256(key = chunk subkey, 0x0d || ino || inode generation). */
void fs_derive_file_key(uint8_t out[32], const uint8_t chunk_subkey[32], uint64_t ino, uint64_t gen);

/* Key files hold 64 hex digits (and an optional newline). Returns 0 or -errno; *why says what is wrong. */
int fs_key_read_file(const char *path, uint8_t key[32], const char **why);
/* Writes a fresh random key as hex to path (created 0600, must not exist), or to stdout if path is NULL. */
int fs_key_generate_file(const char *path);

/* Passphrases. */
#define FS_SALT_BYTES 16
typedef struct {
	uint64_t opslimit, memlimit;
	uint8_t salt[FS_SALT_BYTES];
} fs_kdf_params;
void fs_kdf_params_default(fs_kdf_params *p);
/* Reads a passphrase file (first line, without its newline) into locked memory. */
int fs_passphrase_read_file(const char *path, char **pass, size_t *len, const char **why);
void fs_passphrase_free(char *pass, size_t len);
/* kek = Argon2id(pass, params). Returns 0 or -1 (out of memory or parameters out of range). */
int fs_passphrase_kek(uint8_t kek[32], const char *pass, size_t len, const fs_kdf_params *p);
/* Wraps the master key: XChaCha20-Poly1305 under kek, ad = volume id. wrapped = nonce24 || ct32 || tag16. */
#define FS_WRAPPED_BYTES (24 + 32 + 16)
void fs_key_wrap(uint8_t wrapped[FS_WRAPPED_BYTES], const uint8_t kek[32], const uint8_t master[32],
		 const uint8_t volid[FS_VOLID_BYTES]);
int fs_key_unwrap(uint8_t master[32], const uint8_t kek[32], const uint8_t wrapped[FS_WRAPPED_BYTES],
		  const uint8_t volid[FS_VOLID_BYTES]);

/* Hex helpers. */
void fs_hex(char *out, const uint8_t *in, size_t n); /* out has 2n+1 bytes */
int fs_unhex(uint8_t *out, size_t n, const char *in); /* exactly 2n hex digits; 0 or -1 */
#endif
