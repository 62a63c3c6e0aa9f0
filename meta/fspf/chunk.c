/* Chunks of protected files: their lengths, and sealing and opening one against its tag; the chunk index
 * is the nonce, so a chunk moved to another index fails (docs/FORMAT.md, "File system protection file"). */
#include <sodium.h>
#include <string.h>

#include "crypto/mac.h"
#include "meta/fspf/internal.h"

size_t fspf_chunk_len(const fspf_entry *e, uint64_t idx)
{
	uint64_t start = idx * e->chunk_size;
	if (start >= e->size)
		return 0;
	uint64_t left = e->size - start;
	return left < e->chunk_size ? (size_t)left : e->chunk_size;
}

static void chunk_nonce(uint8_t nonce[FS_NONCE_BYTES], uint64_t idx)
{
	memset(nonce, 0, FS_NONCE_BYTES);
	fs_put_le64(nonce, idx);
}

int fspf_chunk_seal(fs_aead *a, const fspf_entry *e, uint64_t idx, uint8_t *buf, size_t len,
		    uint8_t tag[FS_TAG_BYTES])
{
	uint8_t nonce[FS_NONCE_BYTES], ad[16], dummy[1] = { 0 };
	chunk_nonce(nonce, idx);
	if (e->kind == FSPF_ENCRYPTED) {
		fs_put_le64(ad, idx);
		fs_put_le64(ad + 8, e->size);
		return fs_aead_seal(a, nonce, ad, sizeof(ad), buf, len, buf, tag);
	}
	return fs_aead_seal(a, nonce, buf, len, dummy, 0, dummy, tag);
}

int fspf_chunk_open(fs_aead *a, const fspf_entry *e, uint64_t idx, uint8_t *buf, size_t len)
{
	uint8_t nonce[FS_NONCE_BYTES], ad[16], dummy[1] = { 0 };
	if (!e->tags || idx >= fspf_nchunks(e) || len != fspf_chunk_len(e, idx)) {
		sodium_memzero(buf, len);
		return -1;
	}
	chunk_nonce(nonce, idx);
	if (e->kind == FSPF_ENCRYPTED) {
		fs_put_le64(ad, idx);
		fs_put_le64(ad + 8, e->size);
		return fs_aead_open(a, nonce, ad, sizeof(ad), buf, len, e->tags[idx], buf);
	}
	if (fs_aead_open(a, nonce, buf, len, dummy, 0, e->tags[idx], dummy) != 0) {
		sodium_memzero(buf, len);
		return -1;
	}
	return 0;
}
