#include "meta/header.h"
#include "meta/common/reason.h"

#include <stdio.h>
#include <string.h>

#include "crypto/aead.h"
#include "crypto/mac.h"

/* Byte offsets; docs/FORMAT.md has the same table. */
enum {
	OFF_MAGIC = 0, OFF_VERSION = 8, OFF_LENGTH = 12, OFF_VOLID = 16, OFF_AEAD = 32, OFF_HASH = 33,
	OFF_KEYSRC = 34, OFF_PROTECTION = 35, OFF_CHUNK = 36, OFF_BUCKETS = 40, OFF_RSVD2 = 44, OFF_ANCHOR = 48,
	OFF_OPS = 64, OFF_MEM = 72, OFF_SALT = 80, OFF_WRAPPED = 96, OFF_CHECK = 168, OFF_RSVD3 = 200,
	OFF_MAC = 224,
};


static int all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

static int pow2(uint32_t x)
{
	return x && !(x & (x - 1));
}

int fs_header_parse(const uint8_t *b, size_t len, fs_header *h, char *err, size_t errlen)
{
	memset(h, 0, sizeof(*h));
	if (len < FS_HDR_BYTES)
		return fs_reason(err, errlen, -1, "volume header is truncated (%zu of %d bytes)", len, FS_HDR_BYTES);
	if (memcmp(b + OFF_MAGIC, FS_HDR_MAGIC, 8) != 0)
		return fs_reason(err, errlen, -1, "not an fshield volume header (bad magic)");
	h->format_version = fs_get_le32(b + OFF_VERSION);
	if (h->format_version != FS_FORMAT_VERSION)
		return fs_reason(err, errlen, -1, "volume header has format version %u; this fshield reads only version %d "
			   "(a changed or downgraded header is refused)",
			   h->format_version, FS_FORMAT_VERSION);
	if (len != FS_HDR_BYTES || fs_get_le32(b + OFF_LENGTH) != FS_HDR_BYTES)
		return fs_reason(err, errlen, -1, "volume header has the wrong length");
	memcpy(h->volid, b + OFF_VOLID, FS_VOLID_BYTES);
	h->aead_alg = b[OFF_AEAD];
	h->hash_alg = b[OFF_HASH];
	h->key_source = b[OFF_KEYSRC];
	h->protection = b[OFF_PROTECTION];
	h->chunk_size = fs_get_le32(b + OFF_CHUNK);
	h->buckets = fs_get_le32(b + OFF_BUCKETS);
	memcpy(h->anchor_id, b + OFF_ANCHOR, 16);
	h->kdf.opslimit = fs_get_le64(b + OFF_OPS);
	h->kdf.memlimit = fs_get_le64(b + OFF_MEM);
	memcpy(h->kdf.salt, b + OFF_SALT, FS_SALT_BYTES);
	memcpy(h->wrapped, b + OFF_WRAPPED, FS_WRAPPED_BYTES);
	memcpy(h->key_check, b + OFF_CHECK, 32);
	memcpy(h->mac, b + OFF_MAC, 32);
	if (!fs_aead_alg_valid(h->aead_alg))
		return fs_reason(err, errlen, -1, "volume header names an unknown cipher (%u)", h->aead_alg);
	if (h->hash_alg != FS_HASH_BLAKE2B_256)
		return fs_reason(err, errlen, -1, "volume header names an unknown hash (%u)", h->hash_alg);
	if (h->key_source != FS_KEYSRC_RAW && h->key_source != FS_KEYSRC_PASSPHRASE && h->key_source != FS_KEYSRC_KEYFILE)
		return fs_reason(err, errlen, -1, "volume header names an unknown key source (%u)", h->key_source);
	if (!pow2(h->chunk_size) || h->chunk_size < 4096 || h->chunk_size > (1u << 20))
		return fs_reason(err, errlen, -1, "volume header has an invalid chunk size (%u)", h->chunk_size);
	if (!pow2(h->buckets) || h->buckets > (1u << 20))
		return fs_reason(err, errlen, -1, "volume header has an invalid bucket count (%u)", h->buckets);
	if (h->protection & ~FS_HDR_NO_ROLLBACK_PROTECTION)
		return fs_reason(err, errlen, -1, "volume header has unknown protection flags (0x%02x)", h->protection);
	if (fs_get_le32(b + OFF_RSVD2) || !all_zero(b + OFF_RSVD3, OFF_MAC - OFF_RSVD3))
		return fs_reason(err, errlen, -1, "volume header has non-zero reserved bytes");
	if (h->key_source == FS_KEYSRC_RAW &&
	    !all_zero(b + OFF_OPS, OFF_CHECK - OFF_OPS))
		return fs_reason(err, errlen, -1, "volume header carries passphrase fields for a key-file volume");
	if (h->key_source == FS_KEYSRC_KEYFILE && !all_zero(b + OFF_OPS, OFF_WRAPPED - OFF_OPS))
		return fs_reason(err, errlen, -1, "volume header carries Argon2id fields for a key-file-wrapped volume");
	/* Checked before the KDF runs: a planted header must not make an open take hours or all memory. */
	if (h->key_source == FS_KEYSRC_PASSPHRASE && !fs_kdf_params_ok(&h->kdf))
		return fs_reason(err, errlen, -1,
				 "volume header asks for an Argon2id cost out of bounds (opslimit %llu, memlimit %llu bytes; "
				 "accepted: opslimit %d to %d, memlimit %d bytes to 1 GiB, opslimit x memlimit at most 4 GiB); "
				 "refused without running it",
				 (unsigned long long)h->kdf.opslimit, (unsigned long long)h->kdf.memlimit,
				 FS_KDF_OPSLIMIT_MIN, FS_KDF_OPSLIMIT_MAX, FS_KDF_MEMLIMIT_MIN);
	return 0;
}

static void key_check(uint8_t out[32], const uint8_t master[32], const uint8_t volid[16])
{
	uint8_t k[32];
	fs_mac m;
	fs_derive_subkey(k, master, FS_SUBKEY_CHECK, volid);
	fs_mac_init(&m, k, FS_DOM_KEY_CHECK);
	fs_mac_update(&m, volid, 16);
	fs_mac_final(&m, out);
	sodium_memzero(k, sizeof(k));
}

static void header_mac(uint8_t out[32], const uint8_t *raw, const uint8_t master[32], const uint8_t volid[16])
{
	uint8_t k[32];
	fs_mac m;
	fs_derive_subkey(k, master, FS_SUBKEY_HEADER, volid);
	fs_mac_init(&m, k, FS_DOM_HEADER);
	fs_mac_update(&m, raw, OFF_MAC);
	fs_mac_final(&m, out);
	sodium_memzero(k, sizeof(k));
}

void fs_header_encode(fs_header *h, const uint8_t master[32], uint8_t b[FS_HDR_BYTES])
{
	memset(b, 0, FS_HDR_BYTES);
	memcpy(b + OFF_MAGIC, FS_HDR_MAGIC, 8);
	fs_put_le32(b + OFF_VERSION, FS_FORMAT_VERSION);
	fs_put_le32(b + OFF_LENGTH, FS_HDR_BYTES);
	memcpy(b + OFF_VOLID, h->volid, FS_VOLID_BYTES);
	b[OFF_AEAD] = h->aead_alg;
	b[OFF_HASH] = h->hash_alg;
	b[OFF_KEYSRC] = h->key_source;
	b[OFF_PROTECTION] = h->protection;
	fs_put_le32(b + OFF_CHUNK, h->chunk_size);
	fs_put_le32(b + OFF_BUCKETS, h->buckets);
	memcpy(b + OFF_ANCHOR, h->anchor_id, 16);
	if (h->key_source == FS_KEYSRC_PASSPHRASE) {
		fs_put_le64(b + OFF_OPS, h->kdf.opslimit);
		fs_put_le64(b + OFF_MEM, h->kdf.memlimit);
		memcpy(b + OFF_SALT, h->kdf.salt, FS_SALT_BYTES);
		memcpy(b + OFF_WRAPPED, h->wrapped, FS_WRAPPED_BYTES);
	} else if (h->key_source == FS_KEYSRC_KEYFILE) {
		memcpy(b + OFF_WRAPPED, h->wrapped, FS_WRAPPED_BYTES);
	}
	key_check(h->key_check, master, h->volid);
	memcpy(b + OFF_CHECK, h->key_check, 32);
	header_mac(h->mac, b, master, h->volid);
	memcpy(b + OFF_MAC, h->mac, 32);
}

int fs_header_authenticate(const uint8_t raw[FS_HDR_BYTES], const fs_header *h, const uint8_t master[32])
{
	uint8_t want[32];
	key_check(want, master, h->volid);
	if (!fs_ct_eq(want, raw + OFF_CHECK, 32))
		return FS_HDR_AUTH_WRONG_KEY;
	header_mac(want, raw, master, h->volid);
	return fs_ct_eq(want, raw + OFF_MAC, 32) ? FS_HDR_AUTH_OK : FS_HDR_AUTH_TAMPERED;
}
