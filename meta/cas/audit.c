/* The CAS's audit chain checked: the walk over the whole log in the store. */
#include "meta/cas/audit.h"

#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/common/vec.h"

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
	cas_audit_rec_mac(want, key, r);
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
