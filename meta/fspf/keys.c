/* The manifest's key schedule: its subkeys and the per-file keys of protected files
 * (docs/FORMAT.md, "File system protection file"). */
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "crypto/keys.h"
#include "crypto/mac.h"
#include "meta/fspf/internal.h"

void fspf_subkey(uint8_t out[32], const uint8_t key[32], const uint8_t id[FSPF_ID_BYTES], uint8_t p)
{
	fs_mac m;
	fs_mac_init(&m, key, FSPF_DOM_SUBKEY);
	fs_mac_update(&m, &p, 1);
	fs_mac_update(&m, id, FSPF_ID_BYTES);
	fs_mac_final(&m, out);
}

int fspf_set_key(fspf *m, const uint8_t key[32])
{
	if (!m->key && !(m->key = fs_key_alloc()))
		return -ENOMEM;
	if (!m->files_key && !(m->files_key = fs_key_alloc()))
		return -ENOMEM;
	memcpy(m->key, key, 32);
	fspf_subkey(m->files_key, key, m->id, FSPF_SUB_FILES);
	return 0;
}

fs_aead *fspf_file_aead(const fspf *m, const fspf_entry *e)
{
	uint8_t k[32];
	fs_mac h;
	fs_mac_init(&h, m->files_key, FSPF_DOM_FILE_KEY);
	fs_mac_update(&h, &e->kind, 1);
	fs_mac_update(&h, e->salt, FSPF_SALT_BYTES);
	fs_mac_u64(&h, strlen(e->path));
	fs_mac_update(&h, e->path, strlen(e->path));
	fs_mac_final(&h, k);
	fs_aead *a = fs_aead_new(m->data_aead, k);
	sodium_memzero(k, sizeof(k));
	return a;
}
