/* The CAS store on etcd ("etcd://HOST:PORT[,HOST:PORT...]"): etcd's v3 JSON gateway over libcurl.
 * Every change is one etcd transaction whose compare is the mod_revision of the volume (or session) the
 * change was computed from, so that any number of CAS processes may share one cluster: a transaction
 * that loses a race is re-read and re-decided. etcd answers a write only once a quorum has it in its
 * fsync'ed log, which is the durability the CAS promises. Keys (under "/fshield-cas/"):
 *   s/NS/SESSION            {"creator": hex, "doc": "<session JSON>"}
 *   v/NS/SESSION/VOLUME     {"key": hex, "volid": hex (when registered), "version": n, "root": hex}
 *   n/NONCE                 "1", attached to a lease of 2 x the time window (+ 60 s)
 *   a/SEQ                   an audit record (SEQ: 20 decimal digits), chained (meta/cas/audit.h)
 *   h/audit                 the head of the audit chain {"seq": n, "last": hex, "mac": hex}; every
 *                           transaction that appends a record compares its mod_revision
 *   m/check                 the check value of the master key {"check": hex} (meta/cas/keyseal.h)
 * "key" is the volume key sealed under the master key (hex of CAS_SEALED_KEY_BYTES): neither the
 * cluster, nor the network, nor a copy of a member's disk sees a key. With --etcd-ca the store speaks
 * HTTPS, checks the members' certificates against that CA, and presents --etcd-cert/--etcd-key.
 * Endpoints are tried in turn; a request that fails on all of them (or that etcd refuses as unavailable)
 * is retried for up to ETCD_RETRY_MS. */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto/keys.h"
#include "meta/cas/audit_chain.h"
#include "meta/cas/curl.h"
#include "meta/cas/keyseal.h"
#include "meta/cas/store.h"
#include "meta/common/vec.h"

#define PREFIX "/fshield-cas/"
#define ETCD_TIMEOUT_MS 3000
#define ETCD_RETRY_MS 15000
#define MAX_ENDPOINTS 16
#define POOL 32

struct etcd_store {
	cas_store base;
	char *ep[MAX_ENDPOINTS];
	int nep;
	int cur; /* endpoint that answered last */
	pthread_mutex_t mu;
	CURL *pool[POOL];
	int npool;
	int64_t lease_id, lease_made;
	char *ca, *cert, *key; /* TLS files; ca NULL: plain HTTP */
	int64_t check_rev; /* the mod_revision of m/check this process is bound to */
};

#define ES(s) ((struct etcd_store *)(s))

/* ---- transport ---- */

static CURL *take(struct etcd_store *e)
{
	pthread_mutex_lock(&e->mu);
	CURL *h = e->npool ? e->pool[--e->npool] : NULL;
	pthread_mutex_unlock(&e->mu);
	return h ? h : curl_easy_init();
}

static void give(struct etcd_store *e, CURL *h)
{
	pthread_mutex_lock(&e->mu);
	if (e->npool < POOL) {
		e->pool[e->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&e->mu);
	if (h)
		curl_easy_cleanup(h);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* POST body to /v3/PATH; the answer parsed. NULL (errmsg set) if no endpoint answered in time. */
static json_t *call(cas_store *s, const char *path, json_t *body)
{
	struct etcd_store *e = ES(s);
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!text) {
		snprintf(s->errmsg, sizeof(s->errmsg), "out of memory");
		return NULL;
	}
	CURL *h = take(e);
	json_t *ans = NULL;
	int64_t deadline = now_ms() + ETCD_RETRY_MS;
	int attempt = 0;
	while (h && !ans) {
		pthread_mutex_lock(&e->mu);
		int i = (e->cur + attempt) % e->nep;
		pthread_mutex_unlock(&e->mu);
		char url[512];
		snprintf(url, sizeof(url), "%s://%s/v3/%s", e->ca ? "https" : "http", e->ep[i], path);
		struct cas_curl_buf b = { .max = 64 * 1024 * 1024 };
		cas_curl_setup(h, url, e->ca ? "https" : "http", ETCD_TIMEOUT_MS, &b);
		if (e->ca) {
			curl_easy_setopt(h, CURLOPT_CAINFO, e->ca);
			curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
			curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
			curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
			curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
			if (e->cert) {
				curl_easy_setopt(h, CURLOPT_SSLCERT, e->cert);
				curl_easy_setopt(h, CURLOPT_SSLKEY, e->key);
			}
		}
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
		CURLcode rc = curl_easy_perform(h);
		long status = 0;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		if (rc == CURLE_OK && status == 200 && b.p)
			ans = json_loads(b.p, 0, NULL);
		if (ans) {
			pthread_mutex_lock(&e->mu);
			e->cur = i;
			pthread_mutex_unlock(&e->mu);
		} else {
			snprintf(s->errmsg, sizeof(s->errmsg), "etcd %s: %s", e->ep[i],
				 rc != CURLE_OK ? curl_easy_strerror(rc) : b.p ? b.p : "no answer");
			attempt++;
			if (now_ms() > deadline) {
				free(b.p);
				break;
			}
			if (attempt % e->nep == 0)
				usleep(100 * 1000); /* every endpoint failed once: a leader election, or all down */
		}
		free(b.p);
	}
	if (h)
		give(e, h);
	free(text);
	return ans;
}

/* ---- encoding ---- */

static json_t *b64(const void *p, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);
	if (!out)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	json_t *j = json_string(out);
	free(out);
	return j;
}

/* Decodes base64 text to a malloc'd NUL-terminated buffer. */
static char *unb64(const char *in, size_t *len)
{
	size_t n = strlen(in);
	if (n % 4)
		return NULL;
	unsigned char *out = malloc(n / 4 * 3 + 1);
	if (!out)
		return NULL;
	int m = n ? EVP_DecodeBlock(out, (const unsigned char *)in, (int)n) : 0;
	if (m < 0) {
		free(out);
		return NULL;
	}
	if (n >= 1 && in[n - 1] == '=')
		m--;
	if (n >= 2 && in[n - 2] == '=')
		m--;
	out[m] = 0;
	*len = (size_t)m;
	return (char *)out;
}

static json_t *key_json(const char *kind, const char *name)
{
	char k[600];
	snprintf(k, sizeof(k), PREFIX "%s/%s", kind, name);
	return b64(k, strlen(k));
}

/* The range end of all keys starting with prefix: the prefix with its last byte + 1. */
static json_t *prefix_end(const char *kind, const char *name)
{
	char k[600];
	snprintf(k, sizeof(k), PREFIX "%s/%s", kind, name);
	size_t n = strlen(k);
	k[n - 1]++;
	return b64(k, n);
}

static int64_t jint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	return 0;
}

static json_t *jrev(int64_t r)
{
	char b[32];
	snprintf(b, sizeof(b), "%lld", (long long)r);
	return json_string(b);
}

/* A value: its JSON (decoded from base64) and mod revision; *val NULL and rev 0 when absent. */
static int get_value(cas_store *s, const char *kind, const char *name, json_t **val, int64_t *rev)
{
	*val = NULL;
	*rev = 0;
	json_t *q = json_object();
	json_object_set_new(q, "key", key_json(kind, name));
	json_t *a = call(s, "kv/range", q);
	if (!a)
		return -EIO;
	json_t *kvs = json_object_get(a, "kvs");
	int rc = 0;
	if (json_is_array(kvs) && json_array_size(kvs) == 1) {
		json_t *kv = json_array_get(kvs, 0);
		size_t len;
		json_t *v = json_object_get(kv, "value");
		char *txt = json_is_string(v) ? unb64(json_string_value(v), &len) : NULL;
		*val = txt ? json_loadb(txt, len, 0, NULL) : NULL;
		free(txt);
		*rev = jint(kv, "mod_revision");
		if (!*val) {
			snprintf(s->errmsg, sizeof(s->errmsg), "etcd: malformed value of %s/%s", kind, name);
			rc = -EIO;
		}
	}
	json_decref(a);
	return rc;
}

static json_t *put_op(const char *kind, const char *name, json_t *value, int64_t lease)
{
	char *txt = json_dumps(value, JSON_COMPACT);
	json_decref(value);
	json_t *p = json_object(), *op = json_object();
	json_object_set_new(p, "key", key_json(kind, name));
	json_object_set_new(p, "value", txt ? b64(txt, strlen(txt)) : json_string(""));
	if (lease)
		json_object_set_new(p, "lease", jrev(lease));
	free(txt);
	json_object_set_new(op, "request_put", p);
	return op;
}

/* A compare: the key's mod_revision is rev, or (rev 0) the key does not exist. */
static json_t *rev_cmp(const char *kind, const char *name, int64_t rev)
{
	json_t *cmp = json_object();
	json_object_set_new(cmp, "key", key_json(kind, name));
	json_object_set_new(cmp, "result", json_string("EQUAL"));
	if (rev) {
		json_object_set_new(cmp, "target", json_string("MOD"));
		json_object_set_new(cmp, "mod_revision", jrev(rev));
	} else {
		json_object_set_new(cmp, "target", json_string("CREATE"));
		json_object_set_new(cmp, "create_revision", jrev(0));
	}
	return cmp;
}

/* One transaction: if every compare holds, do ops. 1 done, 0 lost the race, -EIO. */
static int txn_if(cas_store *s, json_t *cmps, json_t *ops)
{
	json_t *t = json_object();
	json_object_set_new(t, "compare", cmps);
	json_object_set_new(t, "success", ops);
	json_t *a = call(s, "kv/txn", t);
	if (!a)
		return -EIO;
	int ok = json_is_true(json_object_get(a, "succeeded"));
	json_decref(a);
	return ok;
}

/* One transaction: if the key's mod_revision is rev (0: the key does not exist), do ops. */
static int txn(cas_store *s, const char *kind, const char *name, int64_t rev, json_t *ops)
{
	json_t *cmps = json_array();
	json_array_append_new(cmps, rev_cmp(kind, name, rev));
	return txn_if(s, cmps, ops);
}

static json_t *ops_of(json_t *a, json_t *b)
{
	json_t *ops = json_array();
	if (a)
		json_array_append_new(ops, a);
	if (b)
		json_array_append_new(ops, b);
	return ops;
}

static int hexfield(json_t *o, const char *k, uint8_t *out, size_t n)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) && fs_unhex(out, n, json_string_value(v)) == 0 ? 0 : -1;
}

/* ---- the audit chain ---- */

static int read_head(cas_store *s, uint64_t *seq, uint8_t last[32], uint8_t mac[32], int64_t *rev)
{
	json_t *j;
	*seq = 0;
	memset(last, 0, 32);
	memset(mac, 0, 32);
	int rc = get_value(s, "h", "audit", &j, rev);
	if (rc || !j)
		return rc;
	*seq = (uint64_t)jint(j, "seq");
	if (hexfield(j, "last", last, 32) || hexfield(j, "mac", mac, 32)) {
		snprintf(s->errmsg, sizeof(s->errmsg), "etcd: malformed head of the audit log");
		rc = -EIO;
	}
	json_decref(j);
	return rc;
}

static json_t *rec_json(const cas_audit_rec *r)
{
	json_t *o = json_object();
	char hex[65];
	json_object_set_new(o, "seq", json_integer((json_int_t)r->seq));
	json_object_set_new(o, "time", json_integer((json_int_t)r->time));
	json_object_set_new(o, "volume", json_string(r->volume));
	fs_hex(hex, r->client, 32);
	json_object_set_new(o, "client", json_string(hex));
	json_object_set_new(o, "op", json_string(r->op));
	json_object_set_new(o, "result", json_string(r->result));
	json_object_set_new(o, "count", json_integer((json_int_t)r->count));
	if (r->have_old) {
		json_object_set_new(o, "old_version", json_integer((json_int_t)r->old_state.version));
		fs_hex(hex, r->old_state.root, 32);
		json_object_set_new(o, "old_root", json_string(hex));
	}
	if (r->have_new) {
		json_object_set_new(o, "new_version", json_integer((json_int_t)r->new_state.version));
		fs_hex(hex, r->new_state.root, 32);
		json_object_set_new(o, "new_root", json_string(hex));
	}
	fs_hex(hex, r->prev, 32);
	json_object_set_new(o, "prev", json_string(hex));
	fs_hex(hex, r->mac, 32);
	json_object_set_new(o, "mac", json_string(hex));
	return o;
}

static int read_check(cas_store *s, uint8_t check[32], int64_t *rev);

/* Whether the master check moved since the store was opened (errmsg set if so). */
static int master_moved(cas_store *s)
{
	uint8_t have[32];
	int64_t rev = 0;
	int rc = read_check(s, have, &rev);
	if (rc == -EIO || (!rc && rev == ES(s)->check_rev))
		return 0; /* unreadable: the caller decides again and reads again */
	snprintf(s->errmsg, sizeof(s->errmsg), "the store's master key changed (rotated?) since this CAS started: "
		 "restart it with the new master key file");
	return 1;
}

/* One transaction appending r to the chain, with op (may be NULL) and, when kind is given, only if that
 * key is at revision rev: 1 done, 0 the head or the key moved first (decide again), -errno. */
static int audit_txn(cas_store *s, const char *kind, const char *name, int64_t rev, json_t *op, cas_audit_rec *r)
{
	uint64_t seq;
	uint8_t last[32], hmac[32];
	int64_t hrev;
	int rc = s->audit_key ? read_head(s, &seq, last, hmac, &hrev) : -EINVAL;
	if (rc == -EINVAL)
		snprintf(s->errmsg, sizeof(s->errmsg), "no audit key: nothing is recorded without one");
	if (rc) {
		json_decref(op);
		return rc;
	}
	cas_audit_seal(r, s->audit_key, seq, last);
	cas_audit_head_mac(hmac, s->audit_key, r->seq, r->mac);
	char name_r[32], hex[65];
	snprintf(name_r, sizeof(name_r), "%020llu", (unsigned long long)r->seq);
	json_t *head = json_object();
	json_object_set_new(head, "seq", json_integer((json_int_t)r->seq));
	fs_hex(hex, r->mac, 32);
	json_object_set_new(head, "last", json_string(hex));
	fs_hex(hex, hmac, 32);
	json_object_set_new(head, "mac", json_string(hex));
	json_t *cmps = json_array(), *ops = ops_of(op, put_op("a", name_r, rec_json(r), 0));
	json_array_append_new(ops, put_op("h", "audit", head, 0));
	json_array_append_new(cmps, rev_cmp("h", "audit", hrev));
	if (kind)
		json_array_append_new(cmps, rev_cmp(kind, name, rev));
	/* A volume is written (its key sealed) only while the store is bound to this master key. */
	int vol = kind && !strcmp(kind, "v");
	if (vol)
		json_array_append_new(cmps, rev_cmp("m", "check", ES(s)->check_rev));
	rc = txn_if(s, cmps, ops);
	if (rc == 0 && vol && master_moved(s))
		rc = -EKEYREJECTED;
	if (rc == 1) {
		uint64_t h = atomic_load(&s->audit_high);
		while (h < r->seq && !atomic_compare_exchange_weak(&s->audit_high, &h, r->seq))
			;
	}
	return rc;
}

static int et_audit_add(cas_store *s, const cas_audit_rec *rec)
{
	for (;;) {
		cas_audit_rec r = *rec;
		int rc = audit_txn(s, NULL, NULL, 0, NULL, &r);
		if (rc)
			return rc < 0 ? rc : 0;
	}
}

static int et_audit_head(cas_store *s, uint64_t *seq, uint8_t last[32], uint8_t mac[32])
{
	int64_t rev;
	return read_head(s, seq, last, mac, &rev);
}

/* ---- volumes ---- */

struct vrow {
	int exists, registered;
	uint8_t key[32], volid[16];
	cas_state st;
	int64_t rev;
};

static int read_vol(cas_store *s, const char *volume, struct vrow *v)
{
	json_t *j;
	memset(v, 0, sizeof(*v));
	int rc = get_value(s, "v", volume, &j, &v->rev);
	if (rc || !j)
		return rc;
	v->exists = 1;
	uint8_t sealed[CAS_SEALED_KEY_BYTES];
	if (hexfield(j, "key", sealed, sizeof(sealed)) != 0 ||
	    cas_key_open(v->key, s->master, volume, sealed, sizeof(sealed)) != 0) {
		json_decref(j);
		snprintf(s->errmsg, sizeof(s->errmsg), "etcd: volume %s: its key does not open under the master key"
			 " (sealed under another one, or its value was altered or moved)", volume);
		return -EBADMSG;
	}
	if (!rc && json_object_get(j, "volid")) {
		v->registered = 1;
		v->st.version = (uint64_t)jint(j, "version");
		if (hexfield(j, "volid", v->volid, 16) || hexfield(j, "root", v->st.root, 32))
			rc = -EIO;
	}
	json_decref(j);
	if (rc)
		snprintf(s->errmsg, sizeof(s->errmsg), "etcd: malformed volume %s", volume);
	return rc;
}

/* The value of a volume: its key sealed for this row, never in clear. */
static json_t *vol_json(cas_store *s, const char *volume, const struct vrow *v)
{
	json_t *o = json_object();
	char hex[2 * CAS_SEALED_KEY_BYTES + 1];
	uint8_t sealed[CAS_SEALED_KEY_BYTES];
	cas_key_seal(sealed, s->master, volume, v->key);
	fs_hex(hex, sealed, sizeof(sealed));
	json_object_set_new(o, "key", json_string(hex));
	if (v->registered) {
		fs_hex(hex, v->volid, 16);
		json_object_set_new(o, "volid", json_string(hex));
		json_object_set_new(o, "version", json_integer((json_int_t)v->st.version));
		fs_hex(hex, v->st.root, 32);
		json_object_set_new(o, "root", json_string(hex));
	}
	sodium_memzero(hex, sizeof(hex));
	return o;
}

static int et_volume_key(cas_store *s, const char *volume, const uint8_t client[32], uint8_t key[32])
{
	struct vrow v;
	for (;;) {
		int rc = read_vol(s, volume, &v);
		if (rc)
			return rc;
		cas_audit_rec ar;
		cas_audit_rec_fill(&ar, volume, client, "key", "ok", NULL, NULL);
		if (v.exists) {
			/* The release is recorded; the key itself never changes, so the volume is not compared. */
			rc = audit_txn(s, NULL, NULL, 0, NULL, &ar);
			if (rc == 1)
				memcpy(key, v.key, 32);
			sodium_memzero(&v, sizeof(v));
			if (rc < 0)
				return rc;
			if (rc == 1)
				return 0;
			continue;
		}
		randombytes_buf(v.key, 32);
		rc = audit_txn(s, "v", volume, 0, put_op("v", volume, vol_json(s, volume, &v), 0), &ar);
		if (rc == 1)
			memcpy(key, v.key, 32);
		sodium_memzero(&v, sizeof(v));
		if (rc < 0)
			return rc;
		if (rc == 1)
			return 0;
	}
}

/* Writes v, changed since it was read, with its audit record, if the volume is still at the revision it
 * was read at: 1 done (cur set to the new state), 0 another change came first (decide again), or -errno.
 * v is wiped either way. */
static int write_vol(cas_store *s, const char *volume, struct vrow *v, cas_audit_rec *audit, cas_state *cur)
{
	int rc = audit_txn(s, "v", volume, v->rev, put_op("v", volume, vol_json(s, volume, v), 0), audit);
	if (rc == 1 && cur)
		*cur = v->st;
	sodium_memzero(v, sizeof(*v));
	return rc;
}

/* A refusal, audited only if the volume's row is still the one read (v, wiped here): code once it is
 * recorded, 1 when the row changed meanwhile (decide again), or -errno. */
static int refuse_as_read(cas_store *s, const char *volume, struct vrow *v, cas_audit_rec *ar, int code)
{
	int rc = audit_txn(s, "v", volume, v->rev, NULL, ar);
	sodium_memzero(v, sizeof(*v));
	return rc < 0 ? rc : rc == 1 ? code : 1;
}

static int et_register(cas_store *s, const char *volume, const uint8_t client[32], const uint8_t volid[16],
		       const cas_state *st, cas_state *cur)
{
	struct vrow v;
	for (;;) {
		int rc = read_vol(s, volume, &v);
		if (rc)
			return rc;
		if (v.registered && !memcmp(v.volid, volid, 16) && v.st.version == st->version &&
		    !memcmp(v.st.root, st->root, 32)) {
			/* Our own transaction, whose answer etcd sent but we did not get before retrying. */
			if (cur)
				*cur = v.st;
			sodium_memzero(&v, sizeof(v));
			return 0;
		}
		cas_audit_rec ar;
		if (v.registered) {
			if (cur)
				*cur = v.st;
			cas_audit_rec_fill(&ar, volume, client, "register", "exists", &v.st, st);
			if ((rc = refuse_as_read(s, volume, &v, &ar, -EEXIST)) != 1)
				return rc;
			continue;
		}
		if (!v.exists)
			randombytes_buf(v.key, 32);
		v.registered = 1;
		memcpy(v.volid, volid, 16);
		v.st = *st;
		cas_audit_rec_fill(&ar, volume, client, "register", "ok", NULL, st);
		rc = write_vol(s, volume, &v, &ar, cur);
		if (rc < 0)
			return rc;
		if (rc == 1)
			return 0;
	}
}

static int et_get(cas_store *s, const char *volume, uint8_t volid[16], cas_state *st, int *registered,
		  uint8_t key[32])
{
	struct vrow v;
	int rc = read_vol(s, volume, &v);
	if (!rc) {
		*registered = v.registered;
		memcpy(volid, v.volid, 16);
		*st = v.st;
		if (key && v.exists)
			memcpy(key, v.key, 32);
	}
	sodium_memzero(&v, sizeof(v));
	return rc;
}

/* Reads the registered row of volume with the id volid into v: -ENOENT not registered, -EXDEV another
 * volume id; v is wiped on failure. */
static int read_registered(cas_store *s, const char *volume, const uint8_t volid[16], struct vrow *v)
{
	int rc = read_vol(s, volume, v);
	if (!rc && !v->registered)
		rc = -ENOENT;
	if (!rc && memcmp(v->volid, volid, 16))
		rc = -EXDEV;
	if (rc)
		sodium_memzero(v, sizeof(*v));
	return rc;
}

static int et_cas(cas_store *s, const char *volume, const uint8_t client[32], const uint8_t volid[16],
		  const cas_state *expect, const cas_state *next, int enforce, cas_state *cur)
{
	struct vrow v;
	for (;;) {
		int rc = read_registered(s, volume, volid, &v);
		if (rc)
			return rc;
		if (cur)
			*cur = v.st;
		if (enforce && (v.st.version != expect->version || sodium_memcmp(v.st.root, expect->root, 32) != 0)) {
			/* Recorded only if the volume is still as read: otherwise decide again. */
			cas_audit_rec ar;
			cas_audit_rec_fill(&ar, volume, client, "cas", "conflict", &v.st, next);
			if ((rc = refuse_as_read(s, volume, &v, &ar, -ESTALE)) != 1)
				return rc;
			continue;
		}
		cas_state old = v.st;
		v.st = *next;
		cas_audit_rec ar;
		cas_audit_rec_fill(&ar, volume, client, "cas", "ok", &old, next);
		rc = write_vol(s, volume, &v, &ar, cur);
		if (rc < 0)
			return rc;
		if (rc == 1)
			return 0;
	}
}

/* ---- sessions ---- */

static int et_session_put(cas_store *s, const char *name, const uint8_t creator[32], const char *doc, int create)
{
	for (;;) {
		json_t *j;
		int64_t rev;
		int rc = get_value(s, "s", name, &j, &rev);
		if (rc)
			return rc;
		uint8_t c[32];
		int exists = j != NULL, same = j && hexfield(j, "creator", c, 32) == 0 && !memcmp(c, creator, 32);
		json_decref(j);
		if (create && exists)
			return -EEXIST;
		if (!create && !exists)
			return -ENOENT;
		if (!create && !same)
			return -EACCES;
		char hex[65];
		fs_hex(hex, creator, 32);
		json_t *v = json_pack("{s:s, s:s}", "creator", hex, "doc", doc);
		rc = txn(s, "s", name, create ? 0 : rev, ops_of(put_op("s", name, v, 0), NULL));
		if (rc < 0)
			return rc;
		if (rc == 1)
			return 0;
	}
}

static int et_session_get(cas_store *s, const char *name, uint8_t creator[32], char **doc)
{
	json_t *j;
	int64_t rev;
	int rc = get_value(s, "s", name, &j, &rev);
	if (rc)
		return rc;
	if (!j)
		return -ENOENT;
	json_t *d = json_object_get(j, "doc");
	if (hexfield(j, "creator", creator, 32) != 0 || !json_is_string(d)) {
		json_decref(j);
		snprintf(s->errmsg, sizeof(s->errmsg), "etcd: malformed session %s", name);
		return -EIO;
	}
	*doc = strdup(json_string_value(d));
	json_decref(j);
	return *doc ? 0 : -ENOMEM;
}

/* ---- writer leases: key w/VOLUME, value {"holder": hex, "expires": unix seconds} ---- */

static json_t *delete_op(const char *kind, const char *name)
{
	json_t *d = json_object(), *op = json_object();
	json_object_set_new(d, "key", key_json(kind, name));
	json_object_set_new(op, "request_delete_range", d);
	return op;
}

static int et_lease(cas_store *s, const char *volume, const uint8_t volid[16], const uint8_t holder[16], int64_t now,
		    unsigned ttl, cas_state *cur, int64_t *expires)
{
	struct vrow v;
	int rc = read_registered(s, volume, volid, &v);
	if (rc)
		return rc;
	*cur = v.st;
	sodium_memzero(&v, sizeof(v));
	for (;;) {
		json_t *j;
		int64_t rev;
		uint8_t h[16];
		if ((rc = get_value(s, "w", volume, &j, &rev)) != 0)
			return rc;
		if (j) {
			int mine = hexfield(j, "holder", h, 16) == 0 && !memcmp(h, holder, 16);
			*expires = jint(j, "expires");
			json_decref(j);
			if (!mine && (!ttl || *expires > now))
				return ttl ? -EBUSY : 0;
		} else if (!ttl) {
			return 0;
		}
		char hex[33];
		fs_hex(hex, holder, 16);
		json_t *op = ttl ? put_op("w", volume, json_pack("{s:s,s:I}", "holder", hex, "expires", (json_int_t)(now + ttl)), 0)
				 : delete_op("w", volume);
		rc = txn(s, "w", volume, rev, ops_of(op, NULL));
		if (rc < 0)
			return rc;
		if (rc == 1)
			return 0;
	}
}

/* ---- nonces and audit ---- */

static int et_nonce_use(cas_store *s, const uint8_t nonce[32], int64_t now)
{
	struct etcd_store *e = ES(s);
	pthread_mutex_lock(&e->mu);
	int64_t lease = e->lease_id, made = e->lease_made;
	pthread_mutex_unlock(&e->mu);
	if (!lease || now - made > 60) {
		/* Nonces written under this lease live at least 2 x the window. */
		json_t *a = call(s, "lease/grant", json_pack("{s:s}", "TTL", "660"));
		if (!a)
			return -EIO;
		lease = jint(a, "ID");
		json_decref(a);
		if (!lease) {
			snprintf(s->errmsg, sizeof(s->errmsg), "etcd: no lease granted");
			return -EIO;
		}
		pthread_mutex_lock(&e->mu);
		e->lease_id = lease;
		e->lease_made = now;
		pthread_mutex_unlock(&e->mu);
	}
	char hex[65];
	fs_hex(hex, nonce, 32);
	int rc = txn(s, "n", hex, 0, ops_of(put_op("n", hex, json_string("1"), lease), NULL));
	return rc < 0 ? rc : rc == 1 ? 0 : -EALREADY;
}

/* Records with seq > after, in order, whose volume starts with prefix: pages of the key range a/. */
static int et_audit_list(cas_store *s, const char *prefix, uint64_t after, cas_audit_rec **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	size_t plen = strlen(prefix), cap = 0;
	int rc = 0, more = 1;
	while (!rc && more && *n < 1000) {
		char from[32];
		snprintf(from, sizeof(from), "%020llu", (unsigned long long)after + 1);
		json_t *q = json_object();
		json_object_set_new(q, "key", key_json("a", from));
		json_object_set_new(q, "range_end", prefix_end("a", ""));
		json_object_set_new(q, "limit", json_integer(1000));
		json_t *a = call(s, "kv/range", q);
		if (!a) {
			rc = -EIO;
			break;
		}
		json_t *kvs = json_object_get(a, "kvs");
		size_t cnt = json_is_array(kvs) ? json_array_size(kvs) : 0;
		more = cnt == 1000;
		for (size_t i = 0; i < cnt && !rc && *n < 1000; i++) {
			json_t *kv = json_array_get(kvs, i), *v = json_object_get(kv, "value");
			size_t len;
			char *txt = json_is_string(v) ? unb64(json_string_value(v), &len) : NULL;
			json_t *j = txt ? json_loadb(txt, len, 0, NULL) : NULL;
			free(txt);
			cas_audit_rec x;
			memset(&x, 0, sizeof(x));
			/* A malformed record is kept, zeroed but for its place: the chain check reports it. */
			x.seq = j ? (uint64_t)jint(j, "seq") : after + 1;
			x.time = jint(j, "time");
			snprintf(x.volume, sizeof(x.volume), "%s", json_string_value(json_object_get(j, "volume")) ?: "");
			hexfield(j, "client", x.client, 32);
			snprintf(x.op, sizeof(x.op), "%s", json_string_value(json_object_get(j, "op")) ?: "");
			snprintf(x.result, sizeof(x.result), "%s", json_string_value(json_object_get(j, "result")) ?: "");
			x.count = (uint32_t)jint(j, "count");
			if (json_object_get(j, "old_version")) {
				x.have_old = 1;
				x.old_state.version = (uint64_t)jint(j, "old_version");
				hexfield(j, "old_root", x.old_state.root, 32);
			}
			if (json_object_get(j, "new_version")) {
				x.have_new = 1;
				x.new_state.version = (uint64_t)jint(j, "new_version");
				hexfield(j, "new_root", x.new_state.root, 32);
			}
			hexfield(j, "prev", x.prev, 32);
			hexfield(j, "mac", x.mac, 32);
			json_decref(j);
			if (x.seq > after)
				after = x.seq;
			else
				after++; /* the key named a later place than the record: keep going */
			if (!strncmp(x.volume, prefix, plen))
				rc = VEC_PUSH(*out, *n, cap, x);
		}
		json_decref(a);
	}
	if (rc) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

static int et_session_count(cas_store *s, const uint8_t creator[32], unsigned *n)
{
	*n = 0;
	json_t *q = json_object();
	json_object_set_new(q, "key", key_json("s", ""));
	json_object_set_new(q, "range_end", prefix_end("s", ""));
	json_t *a = call(s, "kv/range", q);
	if (!a)
		return -EIO;
	json_t *kvs = json_object_get(a, "kvs");
	for (size_t i = 0; json_is_array(kvs) && i < json_array_size(kvs); i++) {
		json_t *v = json_object_get(json_array_get(kvs, i), "value");
		size_t len;
		char *txt = json_is_string(v) ? unb64(json_string_value(v), &len) : NULL;
		json_t *j = txt ? json_loadb(txt, len, 0, NULL) : NULL;
		free(txt);
		uint8_t c[32];
		if (j && hexfield(j, "creator", c, 32) == 0 && !memcmp(c, creator, 32))
			(*n)++;
		json_decref(j);
	}
	json_decref(a);
	return 0;
}

/* ---- the master key ---- */

/* The master check: 0 found (check filled), -ENOENT none; its mod revision in *rev. */
static int read_check(cas_store *s, uint8_t check[32], int64_t *rev)
{
	json_t *j;
	int rc = get_value(s, "m", "check", &j, rev);
	if (rc)
		return rc;
	if (!j)
		return -ENOENT;
	rc = hexfield(j, "check", check, 32) == 0 ? 0 : -EIO;
	json_decref(j);
	if (rc)
		snprintf(s->errmsg, sizeof(s->errmsg), "etcd: malformed master check");
	return rc;
}

static json_t *check_json(const uint8_t check[32])
{
	char hex[65];
	fs_hex(hex, check, 32);
	return json_pack("{s:s}", "check", hex);
}

/* All the volumes: the kvs of the range v/ (the answer, to be freed). */
static json_t *all_volumes(cas_store *s, json_t **kvs, int count_only)
{
	json_t *q = json_object();
	json_object_set_new(q, "key", key_json("v", ""));
	json_object_set_new(q, "range_end", prefix_end("v", ""));
	if (count_only)
		json_object_set_new(q, "count_only", json_true());
	json_t *a = call(s, "kv/range", q);
	*kvs = a ? json_object_get(a, "kvs") : NULL;
	return a;
}

static int et_bind_master(cas_store *s, const uint8_t want[32])
{
	for (;;) {
		uint8_t have[32];
		int64_t rev;
		int rc = read_check(s, have, &rev);
		if (!rc) {
			ES(s)->check_rev = rev;
			return sodium_memcmp(have, want, 32) == 0 ? 0 : -EKEYREJECTED;
		}
		if (rc != -ENOENT)
			return rc;
		json_t *kvs, *a = all_volumes(s, &kvs, 1);
		if (!a)
			return -EIO;
		int64_t n = jint(a, "count");
		json_decref(a);
		if (n > 0)
			return -EPROTO;
		/* A new store takes this master key, unless another CAS gave it one first. */
		rc = txn(s, "m", "check", 0, ops_of(put_op("m", "check", check_json(want), 0), NULL));
		if (rc < 0)
			return rc; /* written or not, read it again: its revision is the one bound */
	}
}

/* One transaction: every volume re-sealed, compared at the revision it was read at, and the check
 * replaced; etcd applies all or nothing (a store with more volumes than the cluster's --max-txn-ops
 * is refused by etcd, and nothing changes). */
static int et_rekey(cas_store *s, const uint8_t *old, unsigned *n)
{
	uint8_t have[32], want[32], key[32], sealed[CAS_SEALED_KEY_BYTES];
	int64_t crev = 0;
	*n = 0;
	cas_master_check(want, s->master);
	int rc = read_check(s, have, &crev);
	if (rc && rc != -ENOENT)
		return rc;
	if (old) {
		uint8_t oc[32];
		cas_master_check(oc, old);
		if (rc || sodium_memcmp(have, oc, 32) != 0)
			return -EKEYREJECTED;
	} else if (!rc) {
		return -EKEYREJECTED;
	}
	json_t *kvs, *a = all_volumes(s, &kvs, 0);
	if (!a)
		return -EIO;
	json_t *cmps = json_array(), *ops = json_array();
	json_array_append_new(cmps, rev_cmp("m", "check", crev));
	json_array_append_new(ops, put_op("m", "check", check_json(want), 0));
	size_t plen = strlen(PREFIX "v/");
	rc = 0;
	for (size_t i = 0; json_is_array(kvs) && i < json_array_size(kvs) && !rc; i++) {
		json_t *kv = json_array_get(kvs, i);
		size_t klen, vlen;
		char *name = unb64(json_string_value(json_object_get(kv, "key")) ?: "", &klen);
		char *txt = name ? unb64(json_string_value(json_object_get(kv, "value")) ?: "", &vlen) : NULL;
		json_t *j = txt ? json_loadb(txt, vlen, 0, NULL) : NULL;
		if (txt)
			sodium_memzero(txt, vlen);
		free(txt);
		const char *vol = name && klen > plen ? name + plen : "";
		uint8_t raw[CAS_SEALED_KEY_BYTES];
		int bad = !j || (old ? hexfield(j, "key", raw, sizeof(raw)) || cas_key_open(key, old, vol, raw, sizeof(raw))
				     : hexfield(j, "key", key, 32));
		if (bad) {
			snprintf(s->errmsg, sizeof(s->errmsg), "volume %s: its key %s", vol,
				 old ? "does not open under the old master key" : "is not a clear 32-byte key");
			rc = -EBADMSG;
		} else {
			char hex[2 * CAS_SEALED_KEY_BYTES + 1];
			cas_key_seal(sealed, s->master, vol, key);
			fs_hex(hex, sealed, sizeof(sealed));
			json_object_set_new(j, "key", json_string(hex));
			json_array_append_new(cmps, rev_cmp("v", vol, jint(kv, "mod_revision")));
			json_array_append_new(ops, put_op("v", vol, json_incref(j), 0));
			(*n)++;
		}
		json_decref(j);
		free(name);
	}
	sodium_memzero(key, sizeof(key));
	json_decref(a);
	if (rc) {
		json_decref(cmps);
		json_decref(ops);
		*n = 0;
		return rc;
	}
	rc = txn_if(s, cmps, ops);
	if (rc == 0) {
		snprintf(s->errmsg, sizeof(s->errmsg), "the store changed meanwhile (is a CAS still running on it?)");
		rc = -EAGAIN;
	}
	if (rc < 0) {
		*n = 0;
		return rc;
	}
	return 0;
}

static void et_close(cas_store *s)
{
	struct etcd_store *e = ES(s);
	for (int i = 0; i < e->nep; i++)
		free(e->ep[i]);
	for (int i = 0; i < e->npool; i++)
		curl_easy_cleanup(e->pool[i]);
	free(e->ca);
	free(e->cert);
	free(e->key);
	pthread_mutex_destroy(&e->mu);
	free(e);
}

static const struct cas_store_ops etcd_ops = {
	.session_put = et_session_put,
	.session_get = et_session_get,
	.volume_key = et_volume_key,
	.vol_register = et_register,
	.vol_get = et_get,
	.vol_cas = et_cas,
	.vol_lease = et_lease,
	.nonce_use = et_nonce_use,
	.audit_list = et_audit_list,
	.audit_add = et_audit_add,
	.audit_head = et_audit_head,
	.session_count = et_session_count,
	.bind_master = et_bind_master,
	.rekey = et_rekey,
	.close = et_close,
};

static void curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int cas_store_open_etcd(const char *endpoints, const struct cas_store_conf *conf, cas_store **out, char *err,
			size_t errlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, curl_init);
	struct etcd_store *e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	e->base.ops = &etcd_ops;
	pthread_mutex_init(&e->mu, NULL);
	if ((conf->etcd_cert != NULL) != (conf->etcd_key != NULL) || (conf->etcd_cert && !conf->etcd_ca)) {
		snprintf(err, errlen, "store etcd://%s: a client certificate needs --etcd-cert and --etcd-key, and "
			 "--etcd-ca for the cluster's CA", endpoints);
		et_close(&e->base);
		return -EINVAL;
	}
	if ((conf->etcd_ca && !(e->ca = strdup(conf->etcd_ca))) || (conf->etcd_cert && !(e->cert = strdup(conf->etcd_cert))) ||
	    (conf->etcd_key && !(e->key = strdup(conf->etcd_key)))) {
		snprintf(err, errlen, "out of memory");
		et_close(&e->base);
		return -ENOMEM;
	}
	char *list = strdup(endpoints), *save = NULL;
	for (char *p = list ? strtok_r(list, ",", &save) : NULL; p; p = strtok_r(NULL, ",", &save)) {
		const char *colon = strrchr(p, ':');
		if (e->nep == MAX_ENDPOINTS || !colon || colon == p || !colon[1] || strchr(p, '/')) {
			snprintf(err, errlen, "store etcd://%s: endpoints are HOST:PORT, comma separated (at most %d)",
				 endpoints, MAX_ENDPOINTS);
			free(list);
			et_close(&e->base);
			return -EINVAL;
		}
		e->ep[e->nep++] = strdup(p);
	}
	free(list);
	if (!e->nep) {
		snprintf(err, errlen, "store etcd://: no endpoint");
		et_close(&e->base);
		return -EINVAL;
	}
	/* The cluster must answer now: a CAS without its store serves nothing. */
	json_t *a = call(&e->base, "kv/range", json_pack("{s:o}", "key", key_json("v", "")));
	if (!a) {
		snprintf(err, errlen, "store etcd://%s: %s", endpoints, e->base.errmsg);
		et_close(&e->base);
		return -EIO;
	}
	json_decref(a);
	*out = &e->base;
	return 0;
}
