#include "crypto/aead.h"

#include <openssl/evp.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Key memory: the XChaCha key is in locked, guarded memory, excluded from core dumps and wiped on free
 * (sodium_malloc). The AES-GCM key schedule is inside OpenSSL's EVP contexts, in OpenSSL's ordinary heap:
 * wiped when the context is freed, but not locked against swapping. OpenSSL's secure heap does not hold
 * cipher contexts, and libsodium's AES-GCM (whose state could be locked) seals at about a third of
 * OpenSSL's speed, far below bench/README.md's target; docs/THREAT-MODEL.md section 9 states the limit. */
struct fs_aead {
	int alg;
	EVP_CIPHER_CTX *enc, *dec; /* AES-GCM: key schedule done once, reused per chunk */
	uint8_t *key;              /* XChaCha: key in locked memory */
};

int fs_aead_default_alg(void)
{
	if (sodium_init() < 0)
		return FS_AEAD_XCHACHA20POLY1305;
	return crypto_aead_aes256gcm_is_available() ? FS_AEAD_AES256GCM : FS_AEAD_XCHACHA20POLY1305;
}

const char *fs_aead_alg_name(int alg)
{
	switch (alg) {
	case FS_AEAD_AES256GCM: return "aes-256-gcm";
	case FS_AEAD_XCHACHA20POLY1305: return "xchacha20-poly1305";
	default: return "unknown";
	}
}

int fs_aead_alg_valid(int alg)
{
	return alg == FS_AEAD_AES256GCM || alg == FS_AEAD_XCHACHA20POLY1305;
}

size_t fs_aead_nonce_len(int alg)
{
	return alg == FS_AEAD_AES256GCM ? 12 : 24;
}

uint64_t fs_aead_max_seals(int alg)
{
	return alg == FS_AEAD_AES256GCM ? FS_AEAD_GCM_MAX_SEALS : UINT64_MAX;
}

static EVP_CIPHER_CTX *gcm_ctx(const uint8_t *key, int enc)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	if (!c)
		return NULL;
	if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1 ||
	    EVP_CipherInit_ex(c, NULL, NULL, key, NULL, enc) != 1) {
		EVP_CIPHER_CTX_free(c);
		return NULL;
	}
	return c;
}

fs_aead *fs_aead_new(int alg, const uint8_t key[FS_KEY_BYTES])
{
	if (!fs_aead_alg_valid(alg) || sodium_init() < 0)
		return NULL;
	fs_aead *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->alg = alg;
	if (alg == FS_AEAD_AES256GCM) {
		a->enc = gcm_ctx(key, 1);
		a->dec = gcm_ctx(key, 0);
		if (!a->enc || !a->dec)
			goto fail;
	} else {
		a->key = sodium_malloc(FS_KEY_BYTES);
		if (!a->key)
			goto fail;
		memcpy(a->key, key, FS_KEY_BYTES);
	}
	return a;
fail:
	fs_aead_free(a);
	return NULL;
}

void fs_aead_free(fs_aead *a)
{
	if (!a)
		return;
	EVP_CIPHER_CTX_free(a->enc); /* frees and cleanses the key schedule */
	EVP_CIPHER_CTX_free(a->dec);
	sodium_free(a->key);
	free(a);
}

/* OpenSSL takes int lengths; chunks are at most 1 MiB and rows far less. */
#define MAX_LEN (1u << 30)

int fs_aead_seal(fs_aead *a, const uint8_t nonce[FS_NONCE_BYTES], const uint8_t *ad, size_t adlen,
		 const uint8_t *pt, size_t len, uint8_t *ct, uint8_t tag[FS_TAG_BYTES])
{
	if (len > MAX_LEN || adlen > MAX_LEN)
		return -1;
	if (a->alg == FS_AEAD_XCHACHA20POLY1305)
		return crypto_aead_xchacha20poly1305_ietf_encrypt_detached(ct, tag, NULL, pt, len, ad, adlen,
									  NULL, nonce, a->key) == 0 ? 0 : -1;
	int n;
	if (EVP_EncryptInit_ex(a->enc, NULL, NULL, NULL, nonce) != 1)
		return -1;
	if (adlen && EVP_EncryptUpdate(a->enc, NULL, &n, ad, (int)adlen) != 1)
		return -1;
	if (len && EVP_EncryptUpdate(a->enc, ct, &n, pt, (int)len) != 1)
		return -1;
	if (EVP_EncryptFinal_ex(a->enc, ct + len, &n) != 1)
		return -1;
	return EVP_CIPHER_CTX_ctrl(a->enc, EVP_CTRL_GCM_GET_TAG, FS_TAG_BYTES, tag) == 1 ? 0 : -1;
}

int fs_aead_open(fs_aead *a, const uint8_t nonce[FS_NONCE_BYTES], const uint8_t *ad, size_t adlen,
		 const uint8_t *ct, size_t len, const uint8_t tag[FS_TAG_BYTES], uint8_t *pt)
{
	int ok = 0, n;
	if (len > MAX_LEN || adlen > MAX_LEN)
		return -1;
	if (a->alg == FS_AEAD_XCHACHA20POLY1305) {
		ok = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(pt, NULL, ct, len, tag, ad, adlen,
									  nonce, a->key) == 0;
	} else {
		ok = EVP_DecryptInit_ex(a->dec, NULL, NULL, NULL, nonce) == 1 &&
		     (!adlen || EVP_DecryptUpdate(a->dec, NULL, &n, ad, (int)adlen) == 1) &&
		     (!len || EVP_DecryptUpdate(a->dec, pt, &n, ct, (int)len) == 1) &&
		     EVP_CIPHER_CTX_ctrl(a->dec, EVP_CTRL_GCM_SET_TAG, FS_TAG_BYTES, (void *)tag) == 1 &&
		     EVP_DecryptFinal_ex(a->dec, pt + len, &n) == 1;
	}
	if (!ok) {
		/* Never hand out unauthenticated plaintext. */
		if (len)
			sodium_memzero(pt, len);
		return -1;
	}
	return 0;
}
