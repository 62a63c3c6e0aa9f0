/* volume.hdr: the 256-byte header of a backing directory (layout in docs/FORMAT.md). It names the
 * format, the volume, its algorithms and chunk size, the trust anchor it is bound to, and (for
 * passphrase volumes) the wrapped key; a MAC under the header subkey covers every byte before it. */
#ifndef FS_HEADER_H
#define FS_HEADER_H
#include <stddef.h>
#include <stdint.h>

#include "crypto/keys.h"
#include "meta/keys.h"

#define FS_HDR_BYTES 256
#define FS_HDR_MAGIC "FSHIELD\0"
#define FS_FORMAT_VERSION 1
#define FS_HDR_NAME "volume.hdr"

/* RAW: the key file is the master key. PASSPHRASE: the master key is wrapped under Argon2id of a
 * passphrase. KEYFILE: the master key is wrapped under a key derived from a key file (after a change of
 * key with fshield passwd). */
enum fs_key_source { FS_KEYSRC_RAW = 1, FS_KEYSRC_PASSPHRASE = 2, FS_KEYSRC_KEYFILE = 3 };
enum fs_hash_alg { FS_HASH_BLAKE2B_256 = 1 };
/* Protection flags (byte 35), fixed at init: a trust anchor that later offers less is refused. */
#define FS_HDR_NO_ROLLBACK_PROTECTION 0x01 /* created without rollback protection (none, or a CAS volume
                                              under update_policy no_rollback_protection) */

typedef struct {
	uint32_t format_version;
	uint8_t volid[FS_VOLID_BYTES];
	uint8_t aead_alg, hash_alg, key_source;
	uint8_t protection; /* FS_HDR_NO_ROLLBACK_PROTECTION or 0 */
	uint32_t chunk_size, buckets;
	uint8_t anchor_id[16];
	fs_kdf_params kdf;
	uint8_t wrapped[FS_WRAPPED_BYTES];
	uint8_t key_check[32];
	uint8_t mac[32];
} fs_header;

/* Parses and sanity-checks the unauthenticated fields. 0, or -1 with a reason in err. */
int fs_header_parse(const uint8_t *buf, size_t len, fs_header *h, char *err, size_t errlen);
/* Serialises h, computing key_check and mac from the master key. */
void fs_header_encode(fs_header *h, const uint8_t master[32], uint8_t out[FS_HDR_BYTES]);

enum fs_hdr_auth { FS_HDR_AUTH_OK = 0, FS_HDR_AUTH_WRONG_KEY = 1, FS_HDR_AUTH_TAMPERED = 2 };
/* Checks the key check value, then the MAC, over the raw bytes read from disk. */
int fs_header_authenticate(const uint8_t raw[FS_HDR_BYTES], const fs_header *h, const uint8_t master[32]);
#endif
