/* The CAS's audit chain: the records' and the head's MACs, and the key file. */
#include "meta/cas/audit_chain.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "meta/common/reason.h"

void cas_audit_key_derive(uint8_t out[32], const uint8_t file_key[32])
{
	static const char label[] = "fshield cas audit chain v1";
	crypto_generichash(out, 32, (const uint8_t *)label, sizeof(label), file_key, 32);
}

int cas_audit_key_file(const char *path, uint8_t key[32], char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		/* Created whole under a temporary name, then linked: a concurrent start reads all or nothing. */
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s.%08x.tmp", path, randombytes_random());
		int w = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (w < 0)
			return fs_reason(err, errlen, -errno, "audit key %s: cannot create: %s", path, strerror(errno));
		uint8_t fresh[32];
		randombytes_buf(fresh, 32);
		int bad = write(w, fresh, 32) != 32 || fsync(w) != 0;
		sodium_memzero(fresh, sizeof(fresh));
		bad = close(w) != 0 || bad;
		if (bad || (link(tmp, path) != 0 && errno != EEXIST)) {
			int e = errno ? -errno : -EIO;
			unlink(tmp);
			return fs_reason(err, errlen, e, "audit key %s: cannot create: %s", path, strerror(-e));
		}
		unlink(tmp);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0)
		return fs_reason(err, errlen, -errno, "audit key %s: %s", path, strerror(errno));
	struct stat st;
	uint8_t buf[33];
	ssize_t n = fstat(fd, &st) == 0 ? read(fd, buf, sizeof(buf)) : -1;
	close(fd);
	int rc = 0;
	if (n != 32)
		rc = fs_reason(err, errlen, -EINVAL, "audit key %s: must hold exactly 32 bytes", path);
	else if (st.st_mode & 077)
		rc = fs_reason(err, errlen, -EPERM, "audit key %s: readable by others; chmod 600 it", path);
	else
		memcpy(key, buf, 32);
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

void cas_audit_rec_fill(cas_audit_rec *r, const char *volume, const uint8_t client[32], const char *op,
			const char *result, const cas_state *old, const cas_state *nw)
{
	memset(r, 0, sizeof(*r));
	r->time = (int64_t)time(NULL);
	r->count = 1;
	snprintf(r->volume, sizeof(r->volume), "%s", volume);
	memcpy(r->client, client, 32);
	snprintf(r->op, sizeof(r->op), "%s", op);
	snprintf(r->result, sizeof(r->result), "%s", result);
	if ((r->have_old = old != NULL))
		r->old_state = *old;
	if ((r->have_new = nw != NULL))
		r->new_state = *nw;
}

static void put_u64(crypto_generichash_state *h, uint64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	crypto_generichash_update(h, b, 8);
}

static void put_str(crypto_generichash_state *h, const char *s)
{
	put_u64(h, strlen(s));
	crypto_generichash_update(h, (const uint8_t *)s, strlen(s));
}

static void put_state(crypto_generichash_state *h, int have, const cas_state *st)
{
	put_u64(h, (uint64_t)!!have);
	put_u64(h, have ? st->version : 0);
	static const uint8_t zero[32];
	crypto_generichash_update(h, have ? st->root : zero, 32);
}

void cas_audit_rec_mac(uint8_t out[32], const uint8_t key[32], const cas_audit_rec *r)
{
	static const char label[] = "fshield cas audit record v1";
	crypto_generichash_state h;
	crypto_generichash_init(&h, key, 32, 32);
	crypto_generichash_update(&h, (const uint8_t *)label, sizeof(label));
	put_u64(&h, r->seq);
	put_u64(&h, (uint64_t)r->time);
	put_str(&h, r->volume);
	crypto_generichash_update(&h, r->client, 32);
	put_str(&h, r->op);
	put_str(&h, r->result);
	put_u64(&h, r->count);
	put_state(&h, r->have_old, &r->old_state);
	put_state(&h, r->have_new, &r->new_state);
	crypto_generichash_update(&h, r->prev, 32);
	crypto_generichash_final(&h, out, 32);
}

void cas_audit_seal(cas_audit_rec *r, const uint8_t key[32], uint64_t prev_seq, const uint8_t prev_mac[32])
{
	r->seq = prev_seq + 1;
	memcpy(r->prev, prev_mac, 32);
	cas_audit_rec_mac(r->mac, key, r);
}

void cas_audit_head_mac(uint8_t out[32], const uint8_t key[32], uint64_t seq, const uint8_t last[32])
{
	static const char label[] = "fshield cas audit head v1";
	crypto_generichash_state h;
	crypto_generichash_init(&h, key, 32, 32);
	crypto_generichash_update(&h, (const uint8_t *)label, sizeof(label));
	put_u64(&h, seq);
	crypto_generichash_update(&h, last, 32);
	crypto_generichash_final(&h, out, 32);
}
