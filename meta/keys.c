#include "meta/keys.h"

void fs_derive_subkey(uint8_t out[32], const uint8_t master[32], enum fs_subkey purpose,
		      const uint8_t volid[FS_VOLID_BYTES])
{
	fs_mac m;
	uint8_t p = (uint8_t)purpose;
	fs_mac_init(&m, master, FS_DOM_SUBKEY);
	fs_mac_update(&m, &p, 1);
	fs_mac_update(&m, volid, FS_VOLID_BYTES);
	fs_mac_final(&m, out);
}

void fs_derive_file_key(uint8_t out[32], const uint8_t chunk_subkey[32], uint64_t ino, uint64_t gen)
{
	fs_mac m;
	fs_mac_init(&m, chunk_subkey, FS_DOM_FILE_KEY);
	fs_mac_u64(&m, ino);
	fs_mac_u64(&m, gen);
	fs_mac_final(&m, out);
}

void fs_keyfile_kek(uint8_t out[32], const uint8_t keyfile[32], const uint8_t volid[FS_VOLID_BYTES])
{
	fs_mac m;
	fs_mac_init(&m, keyfile, FS_DOM_KEYFILE_KEK);
	fs_mac_update(&m, volid, FS_VOLID_BYTES);
	fs_mac_final(&m, out);
}
