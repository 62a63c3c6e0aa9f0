/* "cas://HOST:PORT/NAMESPACE/SESSION/VOLUME": a volume of a CAS server (docs/CAS.md). Opening asks for
 * the volume's key, then its policy and session creator; every answer must echo the request's nonce and
 * carry the MAC under the answer key derived from that key. */
#include <errno.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/keys.h"
#include "crypto/mac.h"
#include "meta/anchor/kind.h"
#include "meta/cas/client.h"
#include "meta/cas/proto.h"
#include "meta/common/reason.h"

struct cas_part {
	cas_client *cl;
	char authority[256];
	char volume[3 * CAS_NAME_MAX + 3];
	int have_measurement;
	uint8_t measurement[32];
	uint8_t *key;  /* the volume key released by the CAS (guarded memory) */
	uint8_t *kans; /* the key its answers are MAC'd with */
	uint8_t server_key[32]; /* SHA-256 of the server certificate's public key */
	uint8_t creator[32];    /* the session's creator */
};

#define PART(a) ((struct cas_part *)(a)->priv)

static int refused(int op, long st)
{
	switch (st) {
	case 403: return -EACCES;
	case 404: return -ENOENT;
	case 409: return op == CAS_OP_REGISTER ? -EEXIST : -EXDEV;
	case CAS_HTTP_LEASED: return -EBUSY;
	default: return st >= 500 ? -EIO : -EINVAL;
	}
}

/* One volume request about volid (NULL: none): a fresh nonce, the time and the measurement go out; the
 * answer must echo the nonce and carry the MAC under the answer key (for key: the one derived from the
 * key it carries). Returns 0 with the HTTP status in *status (2xx, or 412 for cas), or -errno with a reason. */
static int cas_call(fs_anchor *a, int op, const uint8_t volid[16], cas_vol_req *r, cas_vol_ans *ans, long *status,
		    char *err, size_t errlen)
{
	struct cas_part *c = PART(a);
	if (volid)
		memcpy(r->volid, volid, 16);
	randombytes_buf(r->nonce, sizeof(r->nonce));
	r->time = (int64_t)time(NULL);
	r->have_measurement = c->have_measurement;
	memcpy(r->measurement, c->measurement, 32);
	char *body = cas_req_encode(op, r), path[512], *resp = NULL, why[200];
	size_t rlen;
	if (!body)
		return fs_reason(err, errlen, -ENOMEM, "out of memory");
	snprintf(path, sizeof(path), "/v1/volumes/%s/%s", c->volume, cas_op_name(op));
	int rc = cas_client_request(c->cl, "POST", path, "application/json", body, strlen(body), status, &resp, &rlen,
				    err, errlen);
	free(body);
	if (rc)
		return rc == -ETIMEDOUT || rc == -ECONNREFUSED || rc == -EPROTO ? rc : -EIO;
	long st = *status;
	rc = cas_ans_decode(op, (int)st, resp, rlen, ans, why, sizeof(why));
	sodium_memzero(resp, rlen); /* the answer to key carries the volume key */
	free(resp);
	if (rc != 0)
		return fs_reason(err, errlen, -EBADMSG, "CAS %s: unreadable answer (HTTP %ld): %s", c->authority, st, why);
	if (!(st == 200 || st == 201 || (op == CAS_OP_CAS && st == CAS_HTTP_CONFLICT)))
		return fs_reason(err, errlen, refused(op, st), "CAS %s refused %s of %s (HTTP %ld %s): %s", c->authority,
				 cas_op_name(op), c->volume, st, ans->error, ans->message);
	if (!fs_ct_eq(ans->nonce, r->nonce, CAS_NONCE_BYTES))
		return fs_reason(err, errlen, -EBADMSG,
				 "CAS %s: the answer does not echo this request's nonce (a replayed answer)", c->authority);
	uint8_t mac[32], kkey[32];
	if (op == CAS_OP_KEY)
		cas_answer_key(kkey, ans->key);
	cas_answer_mac(mac, op == CAS_OP_KEY ? kkey : c->kans, c->volume, op, (int)st, ans);
	sodium_memzero(kkey, sizeof(kkey));
	if (!fs_ct_eq(mac, ans->mac, 32))
		return fs_reason(err, errlen, -EBADMSG,
				 "CAS %s: the %s answer fails authentication under the volume's answer key", c->authority,
				 cas_op_name(op));
	if (op != CAS_OP_INFO && op != CAS_OP_KEY && !fs_ct_eq(ans->volid, r->volid, 16))
		return fs_reason(err, errlen, -EBADMSG, "CAS %s: the answer is about another volume id", c->authority);
	return 0;
}

/* The anchor id pins, at init, the CAS volume name at this server, the server's public key, and (through
 * a PRF of the answer key) the volume key this CAS releases: a later open through another server, a
 * server with another key, or a proxy that hands out another volume key gets another id and is refused. */
static int identity(struct cas_part *c, uint8_t id[16])
{
	static const char label[] = "fshield-cas-anchor-id";
	uint8_t h[32], kc[32];
	unsigned int hl = 0;
	crypto_generichash(kc, sizeof(kc), (const uint8_t *)label, sizeof(label), c->kans, 32);
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int ok = m && EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1 &&
		 EVP_DigestUpdate(m, c->authority, strlen(c->authority)) == 1 && EVP_DigestUpdate(m, "/", 1) == 1 &&
		 EVP_DigestUpdate(m, c->volume, strlen(c->volume)) == 1 && EVP_DigestUpdate(m, c->server_key, 32) == 1 &&
		 EVP_DigestUpdate(m, kc, 32) == 1 && EVP_DigestFinal_ex(m, h, &hl) == 1;
	EVP_MD_CTX_free(m);
	sodium_memzero(kc, sizeof(kc));
	if (!ok)
		return -EIO;
	memcpy(id, h, 16);
	return 0;
}

static int cas_open(fs_anchor *a, const char *spec, int create, const cas_tls *tls, char *err, size_t errlen)
{
	(void)spec;
	(void)create;
	struct cas_part *c = calloc(1, sizeof(*c));
	a->priv = c;
	if (!c || !(c->key = fs_key_alloc()) || !(c->kans = fs_key_alloc()))
		return fs_reason(err, errlen, -ENOMEM, "out of memory");
	int rc = cas_uri_parse(a->uri, c->authority, sizeof(c->authority), c->volume, sizeof(c->volume));
	if (rc == -ENOTSUP)
		return fs_reason(err, errlen, rc,
				 "trust anchor %s: not supported; this build takes cas://HOST:PORT/NAMESPACE/SESSION/VOLUME",
				 a->uri);
	if (rc)
		return fs_reason(err, errlen, rc,
				 "trust anchor %s: malformed (cas://HOST:PORT/NAMESPACE/SESSION/VOLUME, names of A-Z a-z 0-9 "
				 ". _ -)",
				 a->uri);
	uint8_t want_creator[32];
	if (tls && tls->creator && cas_fingerprint_parse(tls->creator, want_creator) != 0)
		return fs_reason(err, errlen, -EINVAL,
				 "--cas-creator takes the SHA-256 fingerprint of a certificate (64 hex digits, as `fshield cas "
				 "fingerprint` prints it), not '%.80s'",
				 tls->creator);
	if ((rc = cas_client_new(c->authority, tls, &c->cl, err, errlen)) != 0)
		return rc;
	/* What this process reports as its measurement: the SHA-256 of its own binary. A claim, not a proof,
	 * unless the process runs in a TEE that attests it (docs/CAS.md). */
	c->have_measurement = cas_file_sha256("/proc/self/exe", c->measurement) == 0;

	/* The key first: every later answer, info included, is authenticated under the key derived from it. */
	cas_vol_req r = { 0 };
	cas_vol_ans ans;
	long st;
	rc = cas_call(a, CAS_OP_KEY, NULL, &r, &ans, &st, err, errlen);
	if (!rc)
		memcpy(c->key, ans.key, 32);
	sodium_memzero(&ans, sizeof(ans));
	if (rc)
		return rc;
	cas_answer_key(c->kans, c->key);
	if (cas_client_server_fp(c->cl, c->server_key) != 0)
		return fs_reason(err, errlen, -EPROTO, "CAS %s: the server's certificate could not be read", c->authority);
	memset(&r, 0, sizeof(r));
	if ((rc = cas_call(a, CAS_OP_INFO, NULL, &r, &ans, &st, err, errlen)) != 0)
		return rc;
	a->norollback = !strcmp(ans.policy, "no_rollback_protection");
	memcpy(c->creator, ans.creator, 32);
	if (tls && tls->creator && !fs_ct_eq(want_creator, c->creator, 32)) {
		char want[65], got[65];
		fs_hex(want, want_creator, 32);
		fs_hex(got, c->creator, 32);
		return fs_reason(err, errlen, -EACCES,
				 "CAS session of %s was created by %s, not by the expected %s (--cas-creator): someone else "
				 "holds that session; refusing to use it. Choose a namespace you own",
				 c->volume, got, want);
	}
	if (identity(c, a->id) != 0)
		return fs_reason(err, errlen, -EIO, "cannot hash the CAS identity");
	return 0;
}

static void cas_describe(const fs_anchor *a, char *buf, size_t len)
{
	struct cas_part *c = PART(a);
	char k[65], cr[65];
	fs_hex(k, c->server_key, 32);
	fs_hex(cr, c->creator, 32);
	snprintf(buf, len, "CAS %s (server key SHA-256 %s; session creator %s)", c->authority, k, cr);
}

static void cas_close(fs_anchor *a)
{
	struct cas_part *c = PART(a);
	if (!c)
		return;
	cas_client_free(c->cl);
	fs_key_free(c->key);
	fs_key_free(c->kans);
	free(c);
}

static int cas_get_key(fs_anchor *a, uint8_t key[32], char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	memcpy(key, PART(a)->key, 32);
	return 0;
}

static void to_cas(cas_state *out, const fs_anchor_state *in)
{
	out->version = in->version;
	memcpy(out->root, in->root, 32);
}

static void from_cas(fs_anchor_state *out, const cas_state *in)
{
	out->version = in->version;
	memcpy(out->root, in->root, 32);
}

static int cas_register(fs_anchor *a, const uint8_t volid[16], const fs_anchor_state *st, char *err, size_t errlen)
{
	cas_vol_req r = { 0 };
	cas_vol_ans ans;
	long status;
	to_cas(&r.next, st);
	int rc = cas_call(a, CAS_OP_REGISTER, volid, &r, &ans, &status, err, errlen);
	if (rc == -EEXIST)
		fs_reason(err, errlen, rc, "CAS volume %s is registered already (a volume is registered once, at init)",
			  PART(a)->volume);
	return rc;
}

static int cas_get(fs_anchor *a, const uint8_t volid[16], fs_anchor_state *out, char *err, size_t errlen)
{
	cas_vol_req r = { 0 };
	cas_vol_ans ans;
	long status;
	int rc = cas_call(a, CAS_OP_STATE, volid, &r, &ans, &status, err, errlen);
	if (rc == -ENOENT)
		return fs_reason(err, errlen, rc, "volume is not registered with trust anchor %s", a->uri);
	if (rc == -EXDEV)
		return fs_reason(err, errlen, -ENOENT,
				 "trust anchor %s holds another volume (another volume id) under that name", a->uri);
	if (!rc)
		from_cas(out, &ans.state);
	return rc;
}

static int cas_cas(fs_anchor *a, const uint8_t volid[16], const fs_anchor_state *expect, const fs_anchor_state *next,
		   fs_anchor_state *current, char *err, size_t errlen)
{
	cas_vol_req r = { 0 };
	cas_vol_ans ans;
	long status;
	to_cas(&r.expect, expect);
	to_cas(&r.next, next);
	int rc = cas_call(a, CAS_OP_CAS, volid, &r, &ans, &status, err, errlen);
	if (rc)
		return rc == -EXDEV ? -ENOENT : rc;
	if (status == CAS_HTTP_CONFLICT) {
		fs_anchor_state cur;
		from_cas(&cur, &ans.state);
		return anchor_stale(&cur, expect, current, err, errlen);
	}
	if (ans.state.version != next->version || !fs_ct_eq(ans.state.root, next->root, 32))
		return fs_reason(err, errlen, -EBADMSG, "CAS %s: a successful compare-and-swap answered another state",
				 PART(a)->authority);
	return 0;
}

/* The writer lease, kept by the CAS; its answer carries the volume's state under the answer MAC. */
static int cas_lease(fs_anchor *a, const uint8_t volid[16], const uint8_t holder[16], unsigned ttl, fs_anchor_state *cur,
		     char *err, size_t errlen)
{
	cas_vol_req r = { 0 };
	cas_vol_ans ans;
	long status;
	memcpy(r.holder, holder, 16);
	r.ttl = ttl;
	int rc = cas_call(a, CAS_OP_LEASE, volid, &r, &ans, &status, err, errlen);
	if (rc == -EBUSY)
		return fs_reason(err, errlen, rc, "the volume is open read-write elsewhere: CAS %s: %s", PART(a)->authority,
				 ans.message);
	if (rc == -ENOENT || rc == -EXDEV)
		return fs_reason(err, errlen, -ENOENT, "volume is not registered with trust anchor %s (or under another volume id)",
				 a->uri);
	if (!rc)
		from_cas(cur, &ans.state);
	return rc;
}

const struct anchor_ops anchor_cas_ops = {
	.prefix = "cas://",
	.open = cas_open,
	.close = cas_close,
	.describe = cas_describe,
	.get_key = cas_get_key,
	.reg = cas_register,
	.get = cas_get,
	.cas = cas_cas,
	.lease = cas_lease,
};
