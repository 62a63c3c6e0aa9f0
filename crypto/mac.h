/* Keyed hashing for the integrity tree: BLAKE2b-256 keyed with a subkey, one domain byte first so that
 * no two kinds of node can ever be confused. Integers are hashed as 8-byte little endian. */
#ifndef FS_MAC_H
#define FS_MAC_H
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#define FS_HASH_BYTES 32

typedef struct {
	crypto_generichash_state st;
} fs_mac;

/* Domain bytes: see docs/FORMAT.md, "Hash domains". */

void fs_mac_init(fs_mac *m, const uint8_t key[32], uint8_t domain);
void fs_mac_update(fs_mac *m, const void *p, size_t n);
void fs_mac_u64(fs_mac *m, uint64_t v);
void fs_mac_final(fs_mac *m, uint8_t out[FS_HASH_BYTES]);

/* Constant-time equality; 1 when equal. */
int fs_ct_eq(const void *a, const void *b, size_t n);

static inline void fs_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint64_t fs_get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}
static inline void fs_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t fs_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
#endif
