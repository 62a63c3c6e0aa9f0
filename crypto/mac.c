#include "crypto/mac.h"

void fs_mac_init(fs_mac *m, const uint8_t key[32], uint8_t domain)
{
	crypto_generichash_init(&m->st, key, 32, FS_HASH_BYTES);
	crypto_generichash_update(&m->st, &domain, 1);
}

void fs_mac_update(fs_mac *m, const void *p, size_t n)
{
	crypto_generichash_update(&m->st, p, n);
}

void fs_mac_u64(fs_mac *m, uint64_t v)
{
	uint8_t b[8];
	fs_put_le64(b, v);
	crypto_generichash_update(&m->st, b, 8);
}

void fs_mac_final(fs_mac *m, uint8_t out[FS_HASH_BYTES])
{
	crypto_generichash_final(&m->st, out, FS_HASH_BYTES);
	sodium_memzero(&m->st, sizeof(m->st));
}

int fs_ct_eq(const void *a, const void *b, size_t n)
{
	return sodium_memcmp(a, b, n) == 0;
}
