/* The CAS's audit chain: record and head MACs, the chain walk, and the key file. */
#include "meta/cas/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "meta/common/reason.h"
#include "meta/common/vec.h"

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

static void record_mac(uint8_t out[32], const uint8_t key[32], const cas_audit_rec *r)
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
	record_mac(r->mac, key, r);
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

static void broke(uint64_t *broken, uint64_t at, char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void broke(uint64_t *broken, uint64_t at, char *why, size_t whylen, const char *fmt, ...)
{
	*broken = at ? at : 1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* One link: nothing set when r follows (seq, mac); else *broken and why. */
static void check_link(const uint8_t key[32], const cas_audit_rec *r, uint64_t seq, const uint8_t mac[32],
		       uint64_t *broken, char *why, size_t whylen)
{
	uint8_t want[32];
	record_mac(want, key, r);
	unsigned long long q = r->seq, p = seq;
	if (q > p + 1)
		broke(broken, p + 1, why, whylen, "record %llu is missing: the next one is %llu (deleted)", p + 1, q);
	else if (q <= p)
		broke(broken, p + 1, why, whylen, "record %llu is out of order: it comes after record %llu (reordered or copied)", q, p);
	else if (sodium_memcmp(want, r->mac, 32) != 0)
		broke(broken, q, why, whylen, "record %llu does not verify: it was rewritten or forged", q);
	else if (sodium_memcmp(r->prev, mac, 32) != 0)
		broke(broken, q, why, whylen, "record %llu does not follow record %llu: a record was replaced", q, p);
}

/* Whether the record is about name or something below it ("NS/SESSION" takes "NS/SESSION/V"). */
static int about(const char *volume, const char *name)
{
	size_t n = strlen(name);
	return !strncmp(volume, name, n) && (!n || volume[n] == '/' || volume[n] == 0);
}

int cas_audit_check(cas_store *s, const uint8_t key[32], const char *name, uint64_t after, cas_audit_rec **out,
		    size_t *n, uint64_t *broken, char *why, size_t whylen)
{
	uint64_t min_seq = s->audit_high;
	*out = NULL;
	*n = 0;
	*broken = 0;
	why[0] = 0;
	/* The head first: records appended after it was read (by this or another CAS process) are not walked. */
	uint64_t hseq;
	uint8_t hlast[32], hmac[32], want[32];
	int rc = cas_store_audit_head(s, &hseq, hlast, hmac);
	if (rc)
		return rc;
	unsigned long long hs = hseq, ms = min_seq;
	cas_audit_head_mac(want, key, hseq, hlast);
	if ((hseq || min_seq) && sodium_memcmp(want, hmac, 32) != 0) {
		broke(broken, hseq + 1, why, whylen, "the head of the log (at record %llu) does not verify: it was rewritten", hs);
		return 0;
	}
	if (hseq < min_seq) {
		broke(broken, hseq + 1, why, whylen,
		      "records %llu to %llu, written or seen by this server, are gone: the store was rolled back", hs + 1, ms);
		return 0;
	}
	if (hseq == 0) {
		cas_audit_rec *page;
		size_t m;
		rc = cas_store_audit_list(s, "", 0, &page, &m);
		free(page);
		if (!rc && m)
			broke(broken, 1, why, whylen, "the head of the log is gone, but the log has records");
		return rc;
	}
	size_t cap = 0;
	uint64_t seq = 0;
	uint8_t mac[32] = { 0 };
	while (!rc && !*broken && seq < hseq) {
		cas_audit_rec *page;
		size_t m;
		rc = cas_store_audit_list(s, "", seq, &page, &m);
		if (rc)
			break;
		if (m == 0)
			broke(broken, seq + 1, why, whylen, "records %llu to %llu are missing: the log was cut short",
			      (unsigned long long)seq + 1, hs);
		for (size_t i = 0; i < m && !*broken && !rc && seq < hseq; i++) {
			check_link(key, &page[i], seq, mac, broken, why, whylen);
			if (*broken)
				break;
			seq = page[i].seq;
			memcpy(mac, page[i].mac, 32);
			if (page[i].seq > after && *n < 1000 && about(page[i].volume, name))
				rc = VEC_PUSH(*out, *n, cap, page[i]);
		}
		free(page);
	}
	if (!rc && !*broken && seq == hseq && sodium_memcmp(hlast, mac, 32) != 0)
		broke(broken, hseq, why, whylen, "record %llu is not the one the head of the log names: it was replaced", hs);
	if (!rc && !*broken) {
		uint64_t h = atomic_load(&s->audit_high);
		while (h < hseq && !atomic_compare_exchange_weak(&s->audit_high, &h, hseq))
			;
	}
	if (rc || *broken) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}
