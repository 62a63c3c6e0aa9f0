/* Volume keys sealed under the CAS master key (meta/cas/keyseal.h). */
#include "meta/cas/keyseal.h"
#include "crypto/keys.h"
#include "meta/common/reason.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEAL_LABEL "fshield cas key sealing v1"
#define CHECK_LABEL "fshield cas master key check v1"
#define AD_LABEL "fshield cas volume key v1"

int cas_master_key_file(const char *path, uint8_t key[32], char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return fs_reason(err, errlen, -errno, "master key %s: %s%s", path, strerror(errno),
				 errno == ENOENT ? " (create one with `fshield keygen -o FILE`, and back it up)" : "");
	struct stat st;
	int rc = 0;
	const char *why = NULL;
	if (fstat(fd, &st) != 0)
		rc = fs_reason(err, errlen, -errno, "master key %s: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		rc = fs_reason(err, errlen, -EINVAL, "master key %s: not a regular file", path);
	else if (st.st_mode & 077)
		rc = fs_reason(err, errlen, -EPERM, "master key %s: its group or others may read it; chmod 600 it", path);
	else if (st.st_uid != geteuid())
		rc = fs_reason(err, errlen, -EPERM, "master key %s: owned by another user", path);
	else if ((rc = fs_key_read_fd(fd, key, &why)) != 0)
		rc = fs_reason(err, errlen, rc, "master key %s: %s", path, why ? why : strerror(-rc));
	close(fd);
	if (rc)
		sodium_memzero(key, 32);
	return rc;
}

/* The subkey for one purpose: BLAKE2b-256 keyed with the master key over a label. */
static void subkey(uint8_t out[32], const uint8_t master[32], const char *label)
{
	crypto_generichash(out, 32, (const uint8_t *)label, strlen(label), master, 32);
}

void cas_master_check(uint8_t check[32], const uint8_t master[32]) { subkey(check, master, CHECK_LABEL); }

/* The associated data: label, NUL, the row's name, so that a sealed key moved to another row fails. */
static size_t make_ad(uint8_t *ad, size_t cap, const char *name)
{
	size_t l = sizeof(AD_LABEL), n = strnlen(name, cap - l);
	memcpy(ad, AD_LABEL, l);
	memcpy(ad + l, name, n);
	return l + n;
}

void cas_key_seal(uint8_t out[CAS_SEALED_KEY_BYTES], const uint8_t master[32], const char *name,
		  const uint8_t key[32])
{
	uint8_t k[32], ad[sizeof(AD_LABEL) + 512];
	size_t adlen = make_ad(ad, sizeof(ad), name);
	subkey(k, master, SEAL_LABEL);
	out[0] = 1;
	randombytes_buf(out + 1, 24);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + 25, NULL, key, 32, ad, adlen, NULL, out + 1, k);
	sodium_memzero(k, sizeof(k));
}

int cas_key_open(uint8_t key[32], const uint8_t master[32], const char *name, const uint8_t *in, size_t len)
{
	if (len != CAS_SEALED_KEY_BYTES || in[0] != 1) {
		sodium_memzero(key, 32);
		return -EBADMSG;
	}
	uint8_t k[32], ad[sizeof(AD_LABEL) + 512];
	size_t adlen = make_ad(ad, sizeof(ad), name);
	subkey(k, master, SEAL_LABEL);
	int r = crypto_aead_xchacha20poly1305_ietf_decrypt(key, NULL, NULL, in + 25, 32 + 16, ad, adlen, in + 1, k);
	sodium_memzero(k, sizeof(k));
	if (r != 0) {
		sodium_memzero(key, 32);
		return -EBADMSG;
	}
	return 0;
}
