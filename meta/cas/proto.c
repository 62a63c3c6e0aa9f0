/* The CAS protocol's names, JSON bodies and answer MAC (docs/CAS.md). */
#include "meta/cas/proto.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/keys.h"
#include "meta/keys.h"
#include "crypto/mac.h"
#include "meta/common/reason.h"


static const char *const op_names[CAS_OP_COUNT] = { "info", "key", "register", "state", "cas", "lease" };

const char *cas_op_name(int op)
{
	return op >= 0 && op < CAS_OP_COUNT ? op_names[op] : "?";
}

int cas_op_parse(const char *s)
{
	for (int i = 0; i < CAS_OP_COUNT; i++)
		if (!strcmp(s, op_names[i]))
			return i;
	return -1;
}

int cas_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > CAS_NAME_MAX)
		return 0;
	if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static int parts_valid(const char *s, int want)
{
	int n = 0;
	const char *p = s;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (!cas_name_valid(p, len))
			return -1;
		n++;
		if (!slash)
			break;
		p = slash + 1;
	}
	return n == want ? 0 : -1;
}

int cas_session_name_valid(const char *s) { return parts_valid(s, 2); }
int cas_volume_name_valid(const char *s) { return parts_valid(s, 3); }

int cas_uri_parse(const char *uri, char *authority, size_t alen, char *volume, size_t vlen)
{
	if (strncmp(uri, "cas://", 6) != 0)
		return -EINVAL;
	const char *a = uri + 6, *slash = strchr(a, '/');
	if (!slash)
		return -EINVAL;
	size_t al = (size_t)(slash - a);
	const char *colon = memrchr(a, ':', al);
	if (al == 0 || al >= alen || !colon || colon == a || colon + 1 == slash)
		return -EINVAL;
	char *end;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (end != slash || port == 0 || port > 65535)
		return -EINVAL;
	for (const char *p = a; p < colon; p++)
		if (*p <= ' ' || *p == '@' || *p == '?' || *p == '#' || *p == '/')
			return -EINVAL;
	const char *path = slash + 1;
	int segs = 1;
	for (const char *p = path; *p; p++)
		segs += *p == '/';
	if (segs != 3)
		return -ENOTSUP; /* e.g. the cas://HOST:PORT/NAME form of earlier designs */
	if (cas_volume_name_valid(path) != 0 || strlen(path) >= vlen)
		return -EINVAL;
	memcpy(authority, a, al);
	authority[al] = 0;
	strcpy(volume, path);
	return 0;
}

/* ---- JSON helpers ---- */

int cas_json_keys_only(json_t *o, const char *const *allowed, const char *where, char *err, size_t errlen)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	{
		int ok = 0;
		for (const char *const *a = allowed; *a; a++)
			ok |= !strcmp(*a, k);
		if (!ok)
			return where ? fs_reason(err, errlen, -1, "unknown field '%.64s' in %s", k, where)
				     : fs_reason(err, errlen, -1, "unknown field '%.64s'", k);
	}
	return 0;
}

static int get_hex(json_t *o, const char *key, uint8_t *out, size_t n, int required, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return required ? fs_reason(err, errlen, -1, "missing field '%s'", key) : 1;
	if (!json_is_string(v) || json_string_length(v) != 2 * n || fs_unhex(out, n, json_string_value(v)) != 0)
		return fs_reason(err, errlen, -1, "field '%s' must be %zu hex digits", key, 2 * n);
	return 0;
}

static int get_u64(json_t *o, const char *key, uint64_t *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return fs_reason(err, errlen, -1, "missing field '%s'", key);
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return fs_reason(err, errlen, -1, "field '%s' must be a non-negative integer", key);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int set_hex(json_t *o, const char *key, const uint8_t *in, size_t n)
{
	char buf[2 * 64 + 1];
	if (n > 64)
		return -1;
	fs_hex(buf, in, n);
	return json_object_set_new(o, key, json_string(buf));
}

static json_t *state_json(const cas_state *s)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "version", json_integer((json_int_t)s->version));
	set_hex(o, "root", s->root, 32);
	return o;
}

static int get_state(json_t *o, const char *key, cas_state *s, char *err, size_t errlen)
{
	static const char *const keys[] = { "version", "root", NULL };
	json_t *v = json_object_get(o, key);
	if (!v)
		return fs_reason(err, errlen, -1, "missing field '%s'", key);
	if (!json_is_object(v))
		return fs_reason(err, errlen, -1, "field '%s' must be an object", key);
	char sub[160];
	if (cas_json_keys_only(v, keys, NULL, sub, sizeof(sub)) || get_u64(v, "version", &s->version, sub, sizeof(sub)) ||
	    get_hex(v, "root", s->root, 32, 1, sub, sizeof(sub)))
		return fs_reason(err, errlen, -1, "%s: %s", key, sub);
	if (s->version > (uint64_t)INT64_MAX)
		return fs_reason(err, errlen, -1, "%s: version out of range", key);
	return 0;
}

static json_t *parse_object(const char *body, size_t len, char *err, size_t errlen)
{
	json_error_t je;
	json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!o) {
		snprintf(err, errlen, "malformed JSON: %s (line %d)", je.text, je.line);
		return NULL;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		snprintf(err, errlen, "the body must be a JSON object");
		return NULL;
	}
	return o;
}

static char *dump(json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	return s;
}

/* ---- requests ---- */

char *cas_req_encode(int op, const cas_vol_req *r)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	set_hex(o, "nonce", r->nonce, CAS_NONCE_BYTES);
	json_object_set_new(o, "time", json_integer((json_int_t)r->time));
	if (r->have_measurement)
		set_hex(o, "measurement", r->measurement, CAS_FP_BYTES);
	if (op == CAS_OP_REGISTER || op == CAS_OP_STATE || op == CAS_OP_CAS || op == CAS_OP_LEASE)
		set_hex(o, "volume_id", r->volid, 16);
	if (op == CAS_OP_LEASE) {
		set_hex(o, "holder", r->holder, 16);
		json_object_set_new(o, "ttl", json_integer((json_int_t)r->ttl));
	}
	if (op == CAS_OP_CAS)
		json_object_set_new(o, "expect", state_json(&r->expect));
	if (op == CAS_OP_REGISTER || op == CAS_OP_CAS)
		json_object_set_new(o, "next", state_json(&r->next));
	return dump(o);
}

int cas_req_decode(int op, const char *body, size_t len, cas_vol_req *r, char *err, size_t errlen)
{
	static const char *const k_plain[] = { "nonce", "time", "measurement", NULL };
	static const char *const k_state[] = { "nonce", "time", "measurement", "volume_id", NULL };
	static const char *const k_reg[] = { "nonce", "time", "measurement", "volume_id", "next", NULL };
	static const char *const k_cas[] = { "nonce", "time", "measurement", "volume_id", "expect", "next", NULL };
	static const char *const k_lease[] = { "nonce", "time", "measurement", "volume_id", "holder", "ttl", NULL };
	const char *const *keys = op == CAS_OP_REGISTER ? k_reg : op == CAS_OP_STATE ? k_state : op == CAS_OP_CAS ? k_cas
				  : op == CAS_OP_LEASE ? k_lease : k_plain;
	memset(r, 0, sizeof(*r));
	json_t *o = parse_object(body, len, err, errlen);
	if (!o)
		return -1;
	int rc = cas_json_keys_only(o, keys, NULL, err, errlen);
	if (!rc)
		rc = get_hex(o, "nonce", r->nonce, CAS_NONCE_BYTES, 1, err, errlen);
	if (!rc) {
		json_t *t = json_object_get(o, "time");
		if (!t || !json_is_integer(t))
			rc = fs_reason(err, errlen, -1, "field 'time' must be an integer (Unix seconds)");
		else
			r->time = (int64_t)json_integer_value(t);
	}
	if (!rc) {
		int m = get_hex(o, "measurement", r->measurement, CAS_FP_BYTES, 0, err, errlen);
		rc = m < 0 ? -1 : 0;
		r->have_measurement = m == 0;
	}
	if (!rc && op >= CAS_OP_REGISTER)
		rc = get_hex(o, "volume_id", r->volid, 16, 1, err, errlen);
	if (!rc && op == CAS_OP_CAS)
		rc = get_state(o, "expect", &r->expect, err, errlen);
	if (!rc && (op == CAS_OP_REGISTER || op == CAS_OP_CAS))
		rc = get_state(o, "next", &r->next, err, errlen);
	if (!rc && op == CAS_OP_LEASE && !(rc = get_hex(o, "holder", r->holder, 16, 1, err, errlen))) {
		uint64_t ttl = 0;
		if (!(rc = get_u64(o, "ttl", &ttl, err, errlen)) && ttl > CAS_LEASE_MAX)
			rc = fs_reason(err, errlen, -1, "lease: ttl must be 0 to %d seconds", CAS_LEASE_MAX);
		r->ttl = (uint32_t)ttl;
	}
	if (!rc && op == CAS_OP_REGISTER && r->next.version != 0)
		rc = fs_reason(err, errlen, -1, "register: the first version must be 0");
	if (!rc && op == CAS_OP_CAS && r->next.version != r->expect.version + 1)
		rc = fs_reason(err, errlen, -1, "cas: the next version must be the expected version + 1");
	json_decref(o);
	return rc;
}

/* ---- answers ---- */

static int has_state(int op)
{
	return op == CAS_OP_REGISTER || op == CAS_OP_STATE || op == CAS_OP_CAS || op == CAS_OP_LEASE;
}

char *cas_error_encode(const char *code, const char *message)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "error", json_string(code));
	json_object_set_new(o, "message", json_string(message));
	return dump(o);
}

char *cas_ans_encode(int op, int status, const cas_vol_ans *a)
{
	int ok = status == 200 || status == 201;
	if (!ok && !(status == CAS_HTTP_CONFLICT && op == CAS_OP_CAS))
		return cas_error_encode(a->error[0] ? a->error : "error", a->message);
	json_t *o = json_object();
	if (!o)
		return NULL;
	set_hex(o, "nonce", a->nonce, CAS_NONCE_BYTES);
	if (op == CAS_OP_INFO) {
		json_object_set_new(o, "policy", json_string(a->policy));
		json_object_set_new(o, "registered", json_boolean(a->registered));
		set_hex(o, "creator", a->creator, CAS_FP_BYTES);
	} else if (op == CAS_OP_KEY) {
		set_hex(o, "key", a->key, 32);
	} else {
		set_hex(o, "volume_id", a->volid, 16);
		json_object_set_new(o, "version", json_integer((json_int_t)a->state.version));
		set_hex(o, "root", a->state.root, 32);
	}
	set_hex(o, "mac", a->mac, 32);
	if (!ok) {
		json_object_set_new(o, "error", json_string("conflict"));
		json_object_set_new(o, "message", json_string(a->message));
	}
	return dump(o);
}

int cas_ans_decode(int op, int status, const char *body, size_t len, cas_vol_ans *a, char *err, size_t errlen)
{
	static const char *const k_err[] = { "error", "message", NULL };
	static const char *const k_info[] = { "nonce", "policy", "registered", "creator", "mac", NULL };
	static const char *const k_key[] = { "nonce", "key", "mac", NULL };
	static const char *const k_state[] = { "nonce", "volume_id", "version", "root", "mac", "error", "message", NULL };
	memset(a, 0, sizeof(*a));
	json_t *o = parse_object(body, len, err, errlen);
	if (!o)
		return -1;
	int rc = 0;
	json_t *e = json_object_get(o, "error"), *m = json_object_get(o, "message");
	if (e && json_is_string(e))
		snprintf(a->error, sizeof(a->error), "%s", json_string_value(e));
	if (m && json_is_string(m))
		snprintf(a->message, sizeof(a->message), "%s", json_string_value(m));
	int ok = status == 200 || status == 201;
	if (!ok && !(status == CAS_HTTP_CONFLICT && op == CAS_OP_CAS)) {
		rc = cas_json_keys_only(o, k_err, NULL, err, errlen);
		if (!rc && !a->error[0])
			rc = fs_reason(err, errlen, -1, "error answer without an error code");
		json_decref(o);
		return rc;
	}
	rc = cas_json_keys_only(o, op == CAS_OP_INFO ? k_info : op == CAS_OP_KEY ? k_key : k_state, NULL, err, errlen);
	if (!rc)
		rc = get_hex(o, "nonce", a->nonce, CAS_NONCE_BYTES, 1, err, errlen);
	if (!rc && op == CAS_OP_INFO) {
		json_t *p = json_object_get(o, "policy"), *r = json_object_get(o, "registered");
		if (!p || !json_is_string(p) || json_string_length(p) >= sizeof(a->policy) || !r || !json_is_boolean(r))
			rc = fs_reason(err, errlen, -1, "info answer: 'policy' (string) and 'registered' (boolean) are required");
		else {
			strcpy(a->policy, json_string_value(p));
			a->registered = json_is_true(r);
			rc = get_hex(o, "creator", a->creator, CAS_FP_BYTES, 1, err, errlen);
		}
	} else if (!rc && op == CAS_OP_KEY) {
		rc = get_hex(o, "key", a->key, 32, 1, err, errlen);
	} else if (!rc && has_state(op)) {
		if (!(rc = get_hex(o, "volume_id", a->volid, 16, 1, err, errlen)) &&
		    !(rc = get_u64(o, "version", &a->state.version, err, errlen)))
			rc = get_hex(o, "root", a->state.root, 32, 1, err, errlen);
	}
	if (!rc)
		rc = get_hex(o, "mac", a->mac, 32, 1, err, errlen);
	json_decref(o);
	return rc;
}

/* ---- answer MAC ---- */

/* The CAS answer key is a subkey of the volume key (the subkey domain of docs/FORMAT.md with purpose
 * 0x80 and an all-zero volume id): a purpose no volume subkey uses. */
#define CAS_ANSWER_PURPOSE 0x80

void cas_answer_key(uint8_t out[32], const uint8_t volume_key[32])
{
	uint8_t zero[16] = { 0 };
	fs_derive_subkey(out, volume_key, (enum fs_subkey)CAS_ANSWER_PURPOSE, zero);
}

static void mac_u64(crypto_generichash_state *h, uint64_t v)
{
	uint8_t b[8];
	fs_put_le64(b, v);
	crypto_generichash_update(h, b, 8);
}

static void mac_str(crypto_generichash_state *h, const char *s)
{
	mac_u64(h, strlen(s));
	crypto_generichash_update(h, (const uint8_t *)s, strlen(s));
}

void cas_answer_mac(uint8_t out[32], const uint8_t answer_key[32], const char *volume, int op, int status,
		    const cas_vol_ans *a)
{
	static const char label[] = "fshield-cas-answer-v2";
	crypto_generichash_state h;
	crypto_generichash_init(&h, answer_key, 32, 32);
	crypto_generichash_update(&h, (const uint8_t *)label, sizeof(label)); /* with its NUL */
	mac_str(&h, volume);
	mac_u64(&h, (uint64_t)op);
	crypto_generichash_update(&h, a->nonce, CAS_NONCE_BYTES);
	mac_u64(&h, (uint64_t)status);
	if (op == CAS_OP_INFO) {
		mac_str(&h, a->policy);
		mac_u64(&h, a->registered ? 1 : 0);
		crypto_generichash_update(&h, a->creator, CAS_FP_BYTES);
	} else if (has_state(op)) {
		crypto_generichash_update(&h, a->volid, 16);
		mac_u64(&h, a->state.version);
		crypto_generichash_update(&h, a->state.root, 32);
	}
	crypto_generichash_final(&h, out, 32);
}

/* ---- fingerprints ---- */

/* SHA-256 of the DER of the PEM certificate, or of its public key (of_key). */
static int pem_sha256(const char *pem, size_t len, int of_key, uint8_t fp[32])
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (!x)
		return -1;
	unsigned char *der = NULL;
	int n = of_key ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der) : i2d_X509(x, &der);
	X509_free(x);
	if (n <= 0)
		return -1;
	unsigned int outlen = 0;
	int ok = EVP_Digest(der, (size_t)n, fp, &outlen, EVP_sha256(), NULL) == 1 && outlen == 32;
	OPENSSL_free(der);
	return ok ? 0 : -1;
}

int cas_cert_fingerprint_pem(const char *pem, size_t len, uint8_t fp[32])
{
	return pem_sha256(pem, len, 0, fp);
}

/* 64 hex digits, or 32 colon-separated pairs (as openssl x509 -fingerprint prints them). */
int cas_fingerprint_parse(const char *s, uint8_t out[32])
{
	char hex[65];
	size_t n = strlen(s), j = 0;
	if (n == 95) {
		for (size_t i = 0; i < n; i++) {
			if (i % 3 == 2) {
				if (s[i] != ':')
					return -1;
			} else {
				hex[j++] = s[i];
			}
		}
		hex[j] = 0;
		s = hex;
	} else if (n != 64) {
		return -1;
	}
	return fs_unhex(out, 32, s);
}

int cas_cert_key_fingerprint_pem(const char *pem, size_t len, uint8_t fp[32])
{
	return pem_sha256(pem, len, 1, fp);
}

int cas_file_sha256(const char *path, uint8_t out[32])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1;
	uint8_t buf[65536];
	ssize_t n;
	while (ok && (n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			ok = 0;
			break;
		}
		ok = EVP_DigestUpdate(c, buf, (size_t)n) == 1;
	}
	unsigned int outlen = 0;
	ok = ok && EVP_DigestFinal_ex(c, out, &outlen) == 1 && outlen == 32;
	EVP_MD_CTX_free(c);
	close(fd);
	return ok ? 0 : -1;
}
