/* Trust anchors: "file:PATH", a local SQLite trust store kept apart from the backing directory,
 * "cas://HOST:PORT/NAMESPACE/SESSION/VOLUME", a volume of a CAS server (docs/CAS.md), and "none", the
 * explicit opt-out. */
#include "meta/anchor/anchor.h"

#include <errno.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto/keys.h"
#include "crypto/mac.h"
#include "meta/cas/client.h"
#include "meta/cas/proto.h"

struct cas_part {
	cas_client *cl;
	char authority[256];
	char volume[3 * CAS_NAME_MAX + 3];
	int have_measurement;
	uint8_t measurement[32];
	uint8_t *key;  /* the volume key released by the CAS (guarded memory) */
	uint8_t *kans; /* the key its answers are MAC'd with */
};

struct fs_anchor {
	char *uri;
	int none;
	int norollback; /* a CAS volume under update_policy no_rollback_protection */
	sqlite3 *db;
	struct cas_part *cas;
	uint8_t id[16];
};

const char *fs_anchor_default_uri(const char *explicit_uri)
{
	if (explicit_uri && *explicit_uri)
		return explicit_uri;
	const char *env = getenv("FSHIELD_TRUST");
	return env && *env ? env : FS_DEFAULT_TRUST;
}

#define ERR(...) snprintf(err, errlen, __VA_ARGS__)

/* mkdir -p of the trust store's parent, private to root. */
static int make_parent(const char *path)
{
	char *d = strdup(path);
	if (!d)
		return -ENOMEM;
	for (char *p = d + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(d, 0700) != 0 && errno != EEXIST) {
			int e = errno;
			free(d);
			return -e;
		}
		*p = '/';
	}
	free(d);
	return 0;
}

static int exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static int open_file_store(fs_anchor *a, const char *path, int create, char *err, size_t errlen)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		if (errno != ENOENT || !create) {
			int e = errno;
			ERR("trust store %s: %s", path, strerror(e));
			return -e;
		}
		int rc = make_parent(path);
		if (rc) {
			ERR("trust store %s: cannot create its directory: %s", path, strerror(-rc));
			return rc;
		}
	}
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
	if (sqlite3_open_v2(path, &a->db, flags, NULL) != SQLITE_OK) {
		ERR("trust store %s: %s", path, a->db ? sqlite3_errmsg(a->db) : "cannot open");
		return -EIO;
	}
	chmod(path, 0600);
	sqlite3_busy_timeout(a->db, 10000);
	if (!create) {
		/* An existing file that is not a trust store is refused, never turned into one. */
		sqlite3_stmt *q;
		int n = 0;
		if (sqlite3_prepare_v2(a->db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN "
					      "('store','volumes')",
				       -1, &q, NULL) == SQLITE_OK) {
			if (sqlite3_step(q) == SQLITE_ROW)
				n = sqlite3_column_int(q, 0);
			sqlite3_finalize(q);
		}
		if (n != 2) {
			ERR("trust store %s: not an fshield trust store", path);
			return -ENOENT;
		}
	}
	if (exec(a->db, "PRAGMA journal_mode=WAL") != SQLITE_OK || exec(a->db, "PRAGMA synchronous=FULL") != SQLITE_OK ||
	    exec(a->db, "CREATE TABLE IF NOT EXISTS store(id BLOB NOT NULL);"
			"CREATE TABLE IF NOT EXISTS volumes(volid BLOB PRIMARY KEY, version INTEGER NOT NULL,"
			" root BLOB NOT NULL, updated INTEGER NOT NULL)") != SQLITE_OK) {
		ERR("trust store %s: %s", path, sqlite3_errmsg(a->db));
		return -EIO;
	}
	/* The store's identity is made once, on first use. */
	sqlite3_stmt *s;
	if (exec(a->db, "BEGIN IMMEDIATE") != SQLITE_OK) {
		ERR("trust store %s: %s", path, sqlite3_errmsg(a->db));
		return -EIO;
	}
	int have = 0;
	if (sqlite3_prepare_v2(a->db, "SELECT id FROM store", -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_bytes(s, 0) == 16) {
			memcpy(a->id, sqlite3_column_blob(s, 0), 16);
			have = 1;
		}
		sqlite3_finalize(s);
	}
	if (!have) {
		randombytes_buf(a->id, 16);
		if (sqlite3_prepare_v2(a->db, "INSERT INTO store(id) VALUES(?)", -1, &s, NULL) != SQLITE_OK) {
			exec(a->db, "ROLLBACK");
			ERR("trust store %s: %s", path, sqlite3_errmsg(a->db));
			return -EIO;
		}
		sqlite3_bind_blob(s, 1, a->id, 16, SQLITE_TRANSIENT);
		int rc = sqlite3_step(s);
		sqlite3_finalize(s);
		if (rc != SQLITE_DONE) {
			exec(a->db, "ROLLBACK");
			ERR("trust store %s: %s", path, sqlite3_errmsg(a->db));
			return -EIO;
		}
	}
	if (exec(a->db, "COMMIT") != SQLITE_OK) {
		ERR("trust store %s: %s", path, sqlite3_errmsg(a->db));
		return -EIO;
	}
	return 0;
}

/* ---- cas:// ---- */

static void cas_part_free(struct cas_part *c)
{
	if (!c)
		return;
	cas_client_free(c->cl);
	fs_key_free(c->key);
	fs_key_free(c->kans);
	free(c);
}

/* One volume request: a fresh nonce, the time and the measurement go out; the answer must echo the
 * nonce, and answers about the volume's state must carry the MAC under the answer key. Returns 0 with
 * the HTTP status in *status (2xx, or 412 for cas), or -errno with a reason. */
static int cas_call(fs_anchor *a, int op, cas_vol_req *r, cas_vol_ans *ans, long *status, char *err, size_t errlen)
{
	struct cas_part *c = a->cas;
	randombytes_buf(r->nonce, sizeof(r->nonce));
	r->time = (int64_t)time(NULL);
	r->have_measurement = c->have_measurement;
	memcpy(r->measurement, c->measurement, 32);
	char *body = cas_req_encode(op, r), path[512], *resp = NULL, why[200];
	size_t rlen;
	if (!body) {
		ERR("out of memory");
		return -ENOMEM;
	}
	snprintf(path, sizeof(path), "/v1/volumes/%s/%s", c->volume, cas_op_name(op));
	int rc = cas_client_request(c->cl, "POST", path, "application/json", body, strlen(body), status, &resp, &rlen,
				    err, errlen);
	free(body);
	if (rc)
		return rc == -ETIMEDOUT || rc == -ECONNREFUSED || rc == -EPROTO ? rc : -EIO;
	long st = *status;
	if (cas_ans_decode(op, (int)st, resp, rlen, ans, why, sizeof(why)) != 0) {
		ERR("CAS %s: unreadable answer (HTTP %ld): %s", c->authority, st, why);
		free(resp);
		return -EBADMSG;
	}
	free(resp);
	int ok = st == 200 || st == 201 || (op == CAS_OP_CAS && st == CAS_HTTP_CONFLICT);
	if (!ok) {
		ERR("CAS %s refused %s of %s (HTTP %ld %s): %s", c->authority, cas_op_name(op), c->volume, st,
		    ans->error, ans->message);
		switch (st) {
		case 403: return -EACCES;
		case 404: return -ENOENT;
		case 409: return op == CAS_OP_REGISTER ? -EEXIST : -EXDEV;
		default: return st >= 500 ? -EIO : -EINVAL;
		}
	}
	if (!fs_ct_eq(ans->nonce, r->nonce, CAS_NONCE_BYTES)) {
		ERR("CAS %s: the answer does not echo this request's nonce (a replayed answer)", c->authority);
		return -EBADMSG;
	}
	if (op == CAS_OP_REGISTER || op == CAS_OP_STATE || op == CAS_OP_CAS) {
		uint8_t mac[32];
		cas_answer_mac(mac, c->kans, c->volume, r->nonce, (int)st, ans->volid, &ans->state);
		if (!fs_ct_eq(mac, ans->mac, 32)) {
			ERR("CAS %s: the answer fails authentication under the volume's answer key", c->authority);
			return -EBADMSG;
		}
		if (!fs_ct_eq(ans->volid, r->volid, 16)) {
			ERR("CAS %s: the answer is about another volume id", c->authority);
			return -EBADMSG;
		}
	}
	return 0;
}

static int open_cas(fs_anchor *a, const char *uri, char *err, size_t errlen)
{
	struct cas_part *c = calloc(1, sizeof(*c));
	if (!c || !(c->key = fs_key_alloc()) || !(c->kans = fs_key_alloc())) {
		cas_part_free(c);
		ERR("out of memory");
		return -ENOMEM;
	}
	a->cas = c;
	int rc = cas_uri_parse(uri, c->authority, sizeof(c->authority), c->volume, sizeof(c->volume));
	if (rc == -ENOTSUP) {
		ERR("trust anchor %s: not supported; this build takes cas://HOST:PORT/NAMESPACE/SESSION/VOLUME", uri);
		return rc;
	}
	if (rc) {
		ERR("trust anchor %s: malformed (cas://HOST:PORT/NAMESPACE/SESSION/VOLUME, names of A-Z a-z 0-9 . _ -)",
		    uri);
		return rc;
	}
	cas_tls tls;
	if ((rc = cas_tls_from_env(&tls, err, errlen)) != 0 ||
	    (rc = cas_client_new(c->authority, &tls, &c->cl, err, errlen)) != 0)
		return rc;
	/* What this process reports as its measurement: the SHA-256 of its own binary. A claim, not a proof,
	 * unless the process runs in a TEE that attests it (docs/CAS.md). */
	c->have_measurement = cas_file_sha256("/proc/self/exe", c->measurement) == 0;

	cas_vol_req r;
	cas_vol_ans ans;
	long st;
	memset(&r, 0, sizeof(r));
	if ((rc = cas_call(a, CAS_OP_INFO, &r, &ans, &st, err, errlen)) != 0)
		return rc;
	a->norollback = !strcmp(ans.policy, "no_rollback_protection");
	uint8_t fp[32];
	if (cas_client_server_fp(c->cl, fp) != 0) {
		ERR("CAS %s: the server's certificate could not be read", c->authority);
		return -EPROTO;
	}
	memset(&r, 0, sizeof(r));
	rc = cas_call(a, CAS_OP_KEY, &r, &ans, &st, err, errlen);
	if (rc) {
		sodium_memzero(&ans, sizeof(ans));
		return rc;
	}
	memcpy(c->key, ans.key, 32);
	sodium_memzero(&ans, sizeof(ans));
	cas_answer_key(c->kans, c->key);
	/* The anchor id binds the volume to this CAS volume name at this server (its certificate). */
	uint8_t h[32];
	unsigned int hl = 0;
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int ok = m && EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1 &&
		 EVP_DigestUpdate(m, c->authority, strlen(c->authority)) == 1 && EVP_DigestUpdate(m, "/", 1) == 1 &&
		 EVP_DigestUpdate(m, c->volume, strlen(c->volume)) == 1 && EVP_DigestUpdate(m, fp, 32) == 1 &&
		 EVP_DigestFinal_ex(m, h, &hl) == 1;
	EVP_MD_CTX_free(m);
	if (!ok) {
		ERR("cannot hash the CAS identity");
		return -EIO;
	}
	memcpy(a->id, h, 16);
	return 0;
}

int fs_anchor_get_key(fs_anchor *a, uint8_t key[32], char *err, size_t errlen)
{
	if (!a->cas) {
		ERR("trust anchor %s does not release keys", a->uri);
		return -ENOTSUP;
	}
	memcpy(key, a->cas->key, 32);
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
	cas_vol_req r;
	cas_vol_ans ans;
	long status;
	memset(&r, 0, sizeof(r));
	memcpy(r.volid, volid, 16);
	to_cas(&r.next, st);
	int rc = cas_call(a, CAS_OP_REGISTER, &r, &ans, &status, err, errlen);
	if (rc == -EEXIST)
		ERR("CAS volume %s is registered already (a volume is registered once, at init)", a->cas->volume);
	return rc;
}

static int cas_get(fs_anchor *a, const uint8_t volid[16], fs_anchor_state *out, char *err, size_t errlen)
{
	cas_vol_req r;
	cas_vol_ans ans;
	long status;
	memset(&r, 0, sizeof(r));
	memcpy(r.volid, volid, 16);
	int rc = cas_call(a, CAS_OP_STATE, &r, &ans, &status, err, errlen);
	if (rc == -ENOENT)
		ERR("volume is not registered with trust anchor %s", a->uri);
	else if (rc == -EXDEV)
		ERR("trust anchor %s holds another volume (another volume id) under that name", a->uri);
	if (!rc)
		from_cas(out, &ans.state);
	return rc == -EXDEV ? -ENOENT : rc;
}

static int cas_cas(fs_anchor *a, const uint8_t volid[16], const fs_anchor_state *expect, const fs_anchor_state *next,
		   fs_anchor_state *current, char *err, size_t errlen)
{
	cas_vol_req r;
	cas_vol_ans ans;
	long status;
	memset(&r, 0, sizeof(r));
	memcpy(r.volid, volid, 16);
	to_cas(&r.expect, expect);
	to_cas(&r.next, next);
	int rc = cas_call(a, CAS_OP_CAS, &r, &ans, &status, err, errlen);
	if (rc)
		return rc == -EXDEV ? -ENOENT : rc;
	if (status == CAS_HTTP_CONFLICT) {
		if (current)
			from_cas(current, &ans.state);
		ERR("trust anchor holds version %llu, not the expected %llu", (unsigned long long)ans.state.version,
		    (unsigned long long)expect->version);
		return -ESTALE;
	}
	if (ans.state.version != next->version || !fs_ct_eq(ans.state.root, next->root, 32)) {
		ERR("CAS %s: a successful compare-and-swap answered another state", a->cas->authority);
		return -EBADMSG;
	}
	return 0;
}

int fs_anchor_open(const char *uri, int create, fs_anchor **out, char *err, size_t errlen)
{
	fs_anchor *a = calloc(1, sizeof(*a));
	if (!a || !(a->uri = strdup(uri))) {
		free(a);
		ERR("out of memory");
		return -ENOMEM;
	}
	int rc = 0;
	if (strcmp(uri, "none") == 0) {
		a->none = 1;
	} else if (strncmp(uri, "file:", 5) == 0 && uri[5] == '/') {
		/* file:/path and file:///path; file://host/... names a host, which a local store cannot. */
		const char *path = uri + 5;
		if (strncmp(path, "//", 2) == 0) {
			if (path[2] != '/') {
				ERR("trust anchor %s: file URIs with a host are not supported (use file:/PATH)", uri);
				fs_anchor_close(a);
				return -EINVAL;
			}
			path += 2;
		}
		rc = open_file_store(a, path, create, err, errlen);
	} else if (strncmp(uri, "cas://", 6) == 0) {
		rc = open_cas(a, uri, err, errlen);
	} else {
		ERR("trust anchor %s: unknown kind (use file:/ABSOLUTE/PATH, cas://HOST:PORT/NS/SESSION/VOLUME or none)",
		    uri);
		rc = -EINVAL;
	}
	if (rc) {
		fs_anchor_close(a);
		return rc;
	}
	*out = a;
	return 0;
}

void fs_anchor_close(fs_anchor *a)
{
	if (!a)
		return;
	if (a->db)
		sqlite3_close(a->db);
	cas_part_free(a->cas);
	free(a->uri);
	free(a);
}

const char *fs_anchor_uri(const fs_anchor *a) { return a->uri; }
int fs_anchor_is_none(const fs_anchor *a) { return a->none || a->norollback; }
void fs_anchor_id(const fs_anchor *a, uint8_t id[16]) { memcpy(id, a->id, 16); }

int fs_anchor_register(fs_anchor *a, const uint8_t volid[16], const fs_anchor_state *st, char *err, size_t errlen)
{
	if (a->cas)
		return cas_register(a, volid, st, err, errlen);
	if (a->none)
		return 0;
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(a->db, "INSERT INTO volumes(volid, version, root, updated) VALUES(?,?,?,strftime('%s'))",
			       -1, &s, NULL) != SQLITE_OK) {
		ERR("trust store: %s", sqlite3_errmsg(a->db));
		return -EIO;
	}
	sqlite3_bind_blob(s, 1, volid, 16, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)st->version);
	sqlite3_bind_blob(s, 3, st->root, 32, SQLITE_TRANSIENT);
	int rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc == SQLITE_CONSTRAINT) {
		ERR("trust store: this volume id is registered already");
		return -EEXIST;
	}
	if (rc != SQLITE_DONE) {
		ERR("trust store: %s", sqlite3_errmsg(a->db));
		return -EIO;
	}
	return 0;
}

int fs_anchor_get(fs_anchor *a, const uint8_t volid[16], fs_anchor_state *out, char *err, size_t errlen)
{
	if (a->cas)
		return cas_get(a, volid, out, err, errlen);
	if (a->none) {
		ERR("no trust anchor");
		return -ENOENT;
	}
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(a->db, "SELECT version, root FROM volumes WHERE volid=?", -1, &s, NULL) != SQLITE_OK) {
		ERR("trust store: %s", sqlite3_errmsg(a->db));
		return -EIO;
	}
	sqlite3_bind_blob(s, 1, volid, 16, SQLITE_TRANSIENT);
	int rc = sqlite3_step(s), ret = 0;
	if (rc == SQLITE_ROW && sqlite3_column_bytes(s, 1) == 32) {
		out->version = (uint64_t)sqlite3_column_int64(s, 0);
		memcpy(out->root, sqlite3_column_blob(s, 1), 32);
	} else if (rc == SQLITE_DONE) {
		ERR("volume is not registered with trust anchor %s", a->uri);
		ret = -ENOENT;
	} else {
		ERR("trust store: %s", sqlite3_errmsg(a->db));
		ret = -EIO;
	}
	sqlite3_finalize(s);
	return ret;
}

int fs_anchor_cas(fs_anchor *a, const uint8_t volid[16], const fs_anchor_state *expect,
		  const fs_anchor_state *next, fs_anchor_state *current, char *err, size_t errlen)
{
	if (a->cas)
		return cas_cas(a, volid, expect, next, current, err, errlen);
	if (a->none)
		return 0;
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(a->db,
			       "UPDATE volumes SET version=?, root=?, updated=strftime('%s') "
			       "WHERE volid=? AND version=? AND root=?",
			       -1, &s, NULL) != SQLITE_OK) {
		ERR("trust store: %s", sqlite3_errmsg(a->db));
		return -EIO;
	}
	sqlite3_bind_int64(s, 1, (sqlite3_int64)next->version);
	sqlite3_bind_blob(s, 2, next->root, 32, SQLITE_TRANSIENT);
	sqlite3_bind_blob(s, 3, volid, 16, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)expect->version);
	sqlite3_bind_blob(s, 5, expect->root, 32, SQLITE_TRANSIENT);
	int rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		ERR("trust store: %s", sqlite3_errmsg(a->db));
		return -EIO;
	}
	if (sqlite3_changes(a->db) == 1)
		return 0;
	fs_anchor_state cur;
	int g = fs_anchor_get(a, volid, &cur, err, errlen);
	if (g)
		return g;
	if (current)
		*current = cur;
	ERR("trust anchor holds version %llu, not the expected %llu", (unsigned long long)cur.version,
	    (unsigned long long)expect->version);
	return -ESTALE;
}
