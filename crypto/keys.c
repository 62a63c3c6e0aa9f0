#include "crypto/keys.h"
#include "crypto/secret_mode.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int fs_crypto_init(void)
{
	if (sodium_init() < 0)
		return -1;
	/* Keys live in this process; a core dump would carry them to disk. */
	struct rlimit rl = { 0, 0 };
	setrlimit(RLIMIT_CORE, &rl);
	return 0;
}

uint8_t *fs_key_alloc(void)
{
	/* sodium_malloc: guard pages, mlock'd, MADV_DONTDUMP, canary; sodium_free wipes it. */
	return sodium_malloc(32);
}

void fs_key_free(uint8_t *k)
{
	sodium_free(k);
}

void fs_hex(char *out, const uint8_t *in, size_t n)
{
	sodium_bin2hex(out, 2 * n + 1, in, n);
}

int fs_unhex(uint8_t *out, size_t n, const char *in)
{
	size_t got = 0;
	const char *end = NULL;
	if (strlen(in) != 2 * n)
		return -1;
	if (sodium_hex2bin(out, n, in, 2 * n, NULL, &got, &end) != 0 || got != n)
		return -1;
	return 0;
}

/* Reads at most cap-1 bytes of a small secret from fd into buf (NUL-terminated); fd stays open. */
static int read_secret_fd(int fd, char *buf, size_t cap, size_t *len, const char **why)
{
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			*why = strerror(e);
			return -e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == cap - 1) {
			char extra;
			if (read(fd, &extra, 1) > 0) {
				*why = "file too long";
				return -EINVAL;
			}
			break;
		}
	}
	buf[n] = 0;
	*len = n;
	return 0;
}

static int read_secret(const char *path, char *buf, size_t cap, size_t *len, const char **why)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*why = strerror(errno);
		return -errno;
	}
	int rc = fs_secret_mode_check(fd, path, why);
	if (rc == 0)
		rc = read_secret_fd(fd, buf, cap, len, why);
	close(fd);
	return rc;
}

/* 64 hex digits and optional trailing newlines, read from fd (path NULL) or path, into key. */
static int key_read(const char *path, int fd, uint8_t key[32], const char **why)
{
	char *buf = sodium_malloc(128);
	size_t n;
	if (!buf) {
		*why = "out of memory";
		return -ENOMEM;
	}
	int rc = path ? read_secret(path, buf, 128, &n, why) : read_secret_fd(fd, buf, 128, &n, why);
	if (rc == 0) {
		while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			buf[--n] = 0;
		if (fs_unhex(key, 32, buf) != 0) {
			*why = "it must hold exactly 64 hex digits";
			rc = -EINVAL;
		}
	}
	sodium_free(buf);
	return rc;
}

int fs_key_read_file(const char *path, uint8_t key[32], const char **why)
{
	return key_read(path, -1, key, why);
}

int fs_secret_unreadable(int rc)
{
	return rc < 0 && rc != -EINVAL && rc != -EPERM;
}

int fs_key_read_fd(int fd, uint8_t key[32], const char **why)
{
	return key_read(NULL, fd, key, why);
}

int fs_key_generate_file(const char *path)
{
	uint8_t *key = fs_key_alloc();
	char *hex = sodium_malloc(65);
	int rc = 0;
	if (!key || !hex) {
		rc = -ENOMEM;
		goto out;
	}
	randombytes_buf(key, 32);
	fs_hex(hex, key, 32);
	hex[64] = '\n';
	int fd = path ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : dup(1);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if (write(fd, hex, 65) != 65 || (path && fsync(fd) != 0))
		rc = errno ? -errno : -EIO;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc && path)
		unlink(path);
out:
	fs_key_free(key);
	sodium_free(hex);
	return rc;
}

void fs_kdf_params_default(fs_kdf_params *p)
{
	/* libsodium's "moderate" Argon2id cost: 3 passes over 256 MiB. */
	p->opslimit = crypto_pwhash_OPSLIMIT_MODERATE;
	p->memlimit = crypto_pwhash_MEMLIMIT_MODERATE;
	randombytes_buf(p->salt, sizeof(p->salt));
}

/* The first line of what path (or fd, when path is NULL) holds, into locked memory. */
static int passphrase_read(const char *path, int fd, char **pass, size_t *len, const char **why)
{
	enum { CAP = 4096 };
	char *buf = sodium_malloc(CAP);
	if (!buf) {
		*why = "out of memory";
		return -ENOMEM;
	}
	int rc = path ? read_secret(path, buf, CAP, len, why) : read_secret_fd(fd, buf, CAP, len, why);
	if (rc == 0) {
		char *nl = memchr(buf, '\n', *len);
		if (nl)
			*len = (size_t)(nl - buf);
		if (*len && buf[*len - 1] == '\r')
			(*len)--;
		buf[*len] = 0;
		if (*len == 0) {
			*why = "empty passphrase";
			rc = -EINVAL;
		}
	}
	if (rc) {
		sodium_free(buf);
		return rc;
	}
	*pass = buf;
	return 0;
}

int fs_passphrase_read_file(const char *path, char **pass, size_t *len, const char **why)
{
	return passphrase_read(path, -1, pass, len, why);
}

int fs_passphrase_read_fd(int fd, char **pass, size_t *len, const char **why)
{
	return passphrase_read(NULL, fd, pass, len, why);
}

void fs_passphrase_free(char *pass, size_t len)
{
	(void)len;
	sodium_free(pass);
}

_Static_assert(FS_KDF_OPSLIMIT_MIN >= crypto_pwhash_OPSLIMIT_MIN && FS_KDF_MEMLIMIT_MIN >= crypto_pwhash_MEMLIMIT_MIN,
	       "the accepted Argon2id costs are ones libsodium runs");

int fs_kdf_params_ok(const fs_kdf_params *p)
{
	return p->opslimit >= FS_KDF_OPSLIMIT_MIN && p->opslimit <= FS_KDF_OPSLIMIT_MAX &&
	       p->memlimit >= FS_KDF_MEMLIMIT_MIN && p->memlimit <= FS_KDF_MEMLIMIT_MAX &&
	       p->opslimit * p->memlimit <= FS_KDF_WORK_MAX; /* both bounded above: no overflow */
}

int fs_passphrase_kek(uint8_t kek[32], const char *pass, size_t len, const fs_kdf_params *p)
{
	if (!fs_kdf_params_ok(p))
		return -1;
	return crypto_pwhash(kek, 32, pass, len, p->salt, p->opslimit, (size_t)p->memlimit,
			     crypto_pwhash_ALG_ARGON2ID13) == 0 ? 0 : -1;
}

void fs_key_wrap(uint8_t wrapped[FS_WRAPPED_BYTES], const uint8_t kek[32], const uint8_t master[32],
		 const uint8_t ad[FS_WRAP_AD_BYTES])
{
	randombytes_buf(wrapped, 24);
	crypto_aead_xchacha20poly1305_ietf_encrypt_detached(wrapped + 24, wrapped + 56, NULL, master, 32, ad,
							    FS_WRAP_AD_BYTES, NULL, wrapped, kek);
}

int fs_key_unwrap(uint8_t master[32], const uint8_t kek[32], const uint8_t wrapped[FS_WRAPPED_BYTES],
		  const uint8_t ad[FS_WRAP_AD_BYTES])
{
	return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(master, NULL, wrapped + 24, 32, wrapped + 56,
								   ad, FS_WRAP_AD_BYTES, wrapped, kek) == 0
		       ? 0
		       : -1;
}
