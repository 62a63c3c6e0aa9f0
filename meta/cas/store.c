/* The CAS store: the dispatch over backends, and the SQLite backend ("sqlite:PATH"). */
#include "meta/cas/store.h"
#include "meta/cas/audit_chain.h"
#include "meta/cas/keyseal.h"
#include "crypto/keys.h"
#include "meta/common/reason.h"
#include "meta/common/vec.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>


/* ---- dispatch ---- */

static int sqlite_open(const char *path, cas_store **out, char *err, size_t errlen);

/* The backend, opened as it is: the master key is not checked yet. */
static int open_raw(const char *spec, const struct cas_store_conf *conf, cas_store **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!conf || !conf->master)
		return fs_reason(err, errlen, -EINVAL, "store %s: no master key", spec);
	int rc;
	if (!strncmp(spec, "sqlite:", 7) && spec[7]) {
		if (conf->etcd_ca || conf->etcd_cert || conf->etcd_key)
			return fs_reason(err, errlen, -EINVAL, "store %s: the etcd TLS options are for an etcd:// store", spec);
		rc = sqlite_open(spec + 7, out, err, errlen);
	} else if (!strncmp(spec, "etcd://", 7) && spec[7]) {
		rc = cas_store_open_etcd(spec + 7, conf, out, err, errlen);
	} else {
		return fs_reason(err, errlen, -EINVAL, "store %s: unknown kind (use sqlite:PATH or etcd://HOST:PORT[,HOST:PORT...])", spec);
	}
	if (!rc) {
		(*out)->master = conf->master;
		cas_master_check((*out)->master_check, conf->master);
	}
	return rc;
}

int cas_store_open(const char *spec, const struct cas_store_conf *conf, cas_store **out, char *err, size_t errlen)
{
	int rc = open_raw(spec, conf, out, err, errlen);
	if (rc)
		return rc;
	rc = (*out)->ops->bind_master(*out, (*out)->master_check);
	if (rc == -EKEYREJECTED)
		rc = fs_reason(err, errlen, rc, "store %s: the master key is not this store's (another --master-key-file?); "
				"no volume key can be opened with it. Give the key file the store was sealed with", spec);
	else if (rc == -EPROTO)
		rc = fs_reason(err, errlen, rc, "store %s: it keeps its volume keys in clear (made by an older fshield). "
				"Stop every CAS using it, back it up, and seal its keys once with: fshield cas seal-store "
				"--store %s --master-key-file F", spec, spec);
	else if (rc)
		rc = fs_reason(err, errlen, rc, "store %s: %s", spec, (*out)->errmsg);
	if (rc) {
		cas_store_close(*out);
		*out = NULL;
	}
	return rc;
}

int cas_store_rekey(const char *spec, const struct cas_store_conf *conf, const uint8_t *old, unsigned *n, char *err,
		    size_t errlen)
{
	cas_store *s;
	struct stat st;
	*n = 0;
	/* A store is re-sealed, never made: a mistyped path is not a new, empty store. */
	if (!strncmp(spec, "sqlite:", 7) && stat(spec + 7, &st) != 0)
		return fs_reason(err, errlen, -errno, "store %s: %s", spec, strerror(errno));
	int rc = open_raw(spec, conf, &s, err, errlen);
	if (rc)
		return rc;
	rc = s->ops->rekey(s, old, n);
	if (rc == -EKEYREJECTED)
		rc = fs_reason(err, errlen, rc, old ? "store %s: the old master key is not this store's; nothing changed"
						: "store %s: its keys are sealed already; nothing changed (to change the "
						  "master key: fshield cas rotate-master-key)", spec);
	else if (rc)
		rc = fs_reason(err, errlen, rc, "store %s: %s; nothing changed", spec, s->errmsg);
	cas_store_close(s);
	return rc;
}

void cas_store_close(cas_store *s)
{
	if (s)
		s->ops->close(s);
}

const char *cas_store_errmsg(const cas_store *s) { return s ? s->errmsg : "no store"; }

int cas_store_session_put(cas_store *s, const char *name, const uint8_t creator[32], const char *doc, int create)
{
	return s->ops->session_put(s, name, creator, doc, create);
}
int cas_store_session_get(cas_store *s, const char *name, uint8_t creator[32], char **doc)
{
	return s->ops->session_get(s, name, creator, doc);
}
int cas_store_volume_key(cas_store *s, const char *volume, const uint8_t client[32], uint8_t key[32])
{
	return s->ops->volume_key(s, volume, client, key);
}
int cas_store_register(cas_store *s, const char *volume, const uint8_t client[32], const uint8_t volid[16],
		       const cas_state *st, cas_state *cur)
{
	return s->ops->vol_register(s, volume, client, volid, st, cur);
}
int cas_store_get(cas_store *s, const char *volume, uint8_t volid[16], cas_state *st)
{
	int reg = 0;
	int rc = s->ops->vol_get(s, volume, volid, st, &reg, NULL);
	return rc ? rc : reg ? 0 : -ENOENT;
}
int cas_store_volume_status(cas_store *s, const char *volume, int *exists, int *registered)
{
	uint8_t volid[16], key[32];
	cas_state st;
	memset(key, 0, sizeof(key));
	*registered = 0;
	int rc = s->ops->vol_get(s, volume, volid, &st, registered, key);
	uint8_t zero[32] = { 0 };
	*exists = !rc && sodium_memcmp(key, zero, 32) != 0;
	sodium_memzero(key, sizeof(key));
	return rc;
}
int cas_store_answer_key(cas_store *s, const char *volume, uint8_t kans[32])
{
	uint8_t volid[16], key[32], zero[32] = { 0 };
	cas_state st;
	int reg = 0;
	memset(key, 0, sizeof(key));
	int rc = s->ops->vol_get(s, volume, volid, &st, &reg, key);
	if (!rc && sodium_memcmp(key, zero, 32) == 0)
		rc = -ENOENT;
	if (!rc)
		cas_answer_key(kans, key);
	sodium_memzero(key, sizeof(key));
	return rc;
}
int cas_store_cas(cas_store *s, const char *volume, const uint8_t client[32], const uint8_t volid[16],
		  const cas_state *expect, const cas_state *next, int enforce, cas_state *cur)
{
	return s->ops->vol_cas(s, volume, client, volid, expect, next, enforce, cur);
}
int cas_store_lease(cas_store *s, const char *volume, const uint8_t volid[16], const uint8_t holder[16], int64_t now,
		    unsigned ttl, cas_state *cur, int64_t *expires)
{
	return s->ops->vol_lease(s, volume, volid, holder, now, ttl, cur, expires);
}
int cas_store_nonce_use(cas_store *s, const uint8_t nonce[32], int64_t now)
{
	return s->ops->nonce_use(s, nonce, now);
}
int cas_store_audit_list(cas_store *s, const char *volume_prefix, uint64_t after, cas_audit_rec **out, size_t *n)
{
	return s->ops->audit_list(s, volume_prefix, after, out, n);
}
void cas_store_set_audit_key(cas_store *s, const uint8_t key[32]) { s->audit_key = key; }
int cas_store_audit_add(cas_store *s, const cas_audit_rec *r) { return s->ops->audit_add(s, r); }
int cas_store_audit_head(cas_store *s, uint64_t *seq, uint8_t last[32], uint8_t mac[32])
{
	return s->ops->audit_head(s, seq, last, mac);
}
int cas_store_session_count(cas_store *s, const uint8_t creator[32], unsigned *n)
{
	return s->ops->session_count(s, creator, n);
}

/* ---- SQLite ---- */

struct sqlite_store {
	cas_store base;
	sqlite3 *db;
	pthread_mutex_t mu;
	unsigned nonces; /* inserted since the last purge */
	uint64_t audit_pending; /* the seq appended by the open transaction, 0 if none */
};

#define SQ(s) ((struct sqlite_store *)(s))

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS cas_meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS sessions(name TEXT PRIMARY KEY, creator BLOB NOT NULL, doc TEXT NOT NULL,"
	" created INTEGER NOT NULL, updated INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS volumes(name TEXT PRIMARY KEY, key BLOB NOT NULL, volid BLOB,"
	" version INTEGER, root BLOB, created INTEGER NOT NULL, updated INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS audit(seq INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL,"
	" volume TEXT NOT NULL, client BLOB NOT NULL, op TEXT NOT NULL, result TEXT NOT NULL,"
	" old_version INTEGER, old_root BLOB, new_version INTEGER, new_root BLOB,"
	" count INTEGER NOT NULL, prev BLOB NOT NULL, mac BLOB NOT NULL);"
	"CREATE TABLE IF NOT EXISTS audit_head(id INTEGER PRIMARY KEY CHECK(id = 1), seq INTEGER NOT NULL,"
	" last BLOB NOT NULL, mac BLOB NOT NULL);"
	"CREATE TABLE IF NOT EXISTS nonces(nonce BLOB PRIMARY KEY, time INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS nonces_time ON nonces(time);"
	"CREATE TABLE IF NOT EXISTS leases(volume TEXT PRIMARY KEY, holder BLOB NOT NULL, expires INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO cas_meta(k, v) VALUES('schema', '1');";

static int fail(cas_store *s, int rc)
{
	snprintf(s->errmsg, sizeof(s->errmsg), "%s", sqlite3_errmsg(SQ(s)->db));
	return rc;
}

static int exec(struct sqlite_store *q, const char *sql)
{
	return sqlite3_exec(q->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

static void lock(cas_store *s) { pthread_mutex_lock(&SQ(s)->mu); }
static void unlock(cas_store *s) { pthread_mutex_unlock(&SQ(s)->mu); }

/* BEGIN IMMEDIATE: the write lock first, so that a read-then-write is atomic across processes too. */
static int begin(cas_store *s)
{
	return exec(SQ(s), "BEGIN IMMEDIATE") ? fail(s, -EIO) : 0;
}
static int commit(cas_store *s)
{
	uint64_t appended = SQ(s)->audit_pending;
	SQ(s)->audit_pending = 0;
	if (exec(SQ(s), "COMMIT")) {
		int rc = fail(s, -EIO);
		exec(SQ(s), "ROLLBACK");
		return rc;
	}
	if (appended > s->audit_high)
		s->audit_high = appended; /* under the store's lock */
	return 0;
}
static int rollback(cas_store *s, int rc)
{
	if (rc == -EIO)
		fail(s, rc);
	SQ(s)->audit_pending = 0;
	exec(SQ(s), "ROLLBACK");
	return rc;
}

static sqlite3_stmt *prep(cas_store *s, const char *sql)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(SQ(s)->db, sql, -1, &st, NULL) != SQLITE_OK) {
		fail(s, -EIO);
		return NULL;
	}
	return st;
}

static int64_t now_s(void) { return (int64_t)time(NULL); }

static int sq_session_put(cas_store *s, const char *name, const uint8_t creator[32], const char *doc, int create)
{
	lock(s);
	int rc = begin(s);
	if (rc)
		goto out;
	sqlite3_stmt *st = prep(s, "SELECT creator FROM sessions WHERE name=?");
	if (!st) {
		rc = rollback(s, -EIO);
		goto out;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	int r = sqlite3_step(st), exists = r == SQLITE_ROW;
	int same = exists && sqlite3_column_bytes(st, 0) == 32 && !memcmp(sqlite3_column_blob(st, 0), creator, 32);
	sqlite3_finalize(st);
	if (r != SQLITE_ROW && r != SQLITE_DONE) {
		rc = rollback(s, -EIO);
		goto out;
	}
	if (create && exists) {
		rc = rollback(s, -EEXIST);
		goto out;
	}
	if (!create && !exists) {
		rc = rollback(s, -ENOENT);
		goto out;
	}
	if (!create && !same) {
		rc = rollback(s, -EACCES);
		goto out;
	}
	st = prep(s, create ? "INSERT INTO sessions(doc, created, updated, name, creator) VALUES(?1, ?2, ?2, ?3, ?4)"
			    : "UPDATE sessions SET doc=?1, updated=?2 WHERE name=?3");
	if (!st) {
		rc = rollback(s, -EIO);
		goto out;
	}
	sqlite3_bind_text(st, 1, doc, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, now_s());
	sqlite3_bind_text(st, 3, name, -1, SQLITE_TRANSIENT);
	if (create)
		sqlite3_bind_blob(st, 4, creator, 32, SQLITE_TRANSIENT);
	r = sqlite3_step(st);
	sqlite3_finalize(st);
	rc = r == SQLITE_DONE ? commit(s) : rollback(s, -EIO);
out:
	unlock(s);
	return rc;
}

static int sq_session_get(cas_store *s, const char *name, uint8_t creator[32], char **doc)
{
	lock(s);
	int rc = -EIO;
	sqlite3_stmt *st = prep(s, "SELECT creator, doc FROM sessions WHERE name=?");
	if (st) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
		int r = sqlite3_step(st);
		if (r == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
			memcpy(creator, sqlite3_column_blob(st, 0), 32);
			*doc = strdup((const char *)sqlite3_column_text(st, 1));
			rc = *doc ? 0 : -ENOMEM;
		} else if (r == SQLITE_DONE) {
			rc = -ENOENT;
		} else {
			fail(s, -EIO);
		}
		sqlite3_finalize(st);
	}
	unlock(s);
	return rc;
}

/* Inside a transaction: the volume's row. 0 found, -ENOENT none, -EIO. */
struct vrow {
	uint8_t key[32], volid[16];
	int registered;
	cas_state st;
};

static int read_vol(cas_store *s, const char *volume, struct vrow *v)
{
	sqlite3_stmt *st = prep(s, "SELECT key, volid, version, root FROM volumes WHERE name=?");
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, volume, -1, SQLITE_TRANSIENT);
	int r = sqlite3_step(st), rc = -EIO;
	memset(v, 0, sizeof(*v));
	if (r == SQLITE_ROW && cas_key_open(v->key, s->master, volume, sqlite3_column_blob(st, 0),
					    (size_t)sqlite3_column_bytes(st, 0)) != 0) {
		snprintf(s->errmsg, sizeof(s->errmsg), "volume %s: its key does not open under the master key (sealed"
			 " under another one, or its row was altered or moved)", volume);
		rc = -EBADMSG;
	} else if (r == SQLITE_ROW) {
		if (sqlite3_column_type(st, 1) == SQLITE_BLOB && sqlite3_column_bytes(st, 1) == 16 &&
		    sqlite3_column_bytes(st, 3) == 32) {
			v->registered = 1;
			memcpy(v->volid, sqlite3_column_blob(st, 1), 16);
			v->st.version = (uint64_t)sqlite3_column_int64(st, 2);
			memcpy(v->st.root, sqlite3_column_blob(st, 3), 32);
		}
		rc = 0;
	} else if (r == SQLITE_DONE) {
		rc = -ENOENT;
	}
	sqlite3_finalize(st);
	return rc;
}

static int read_check(cas_store *s, uint8_t check[32]);

/* Inside a transaction: a new volume with a fresh key, sealed under the master key only while the store
 * is still bound to it (a rotation by another process would otherwise leave a key nobody can open). */
static int new_vol(cas_store *s, const char *volume, struct vrow *v)
{
	uint8_t sealed[CAS_SEALED_KEY_BYTES], have[32];
	memset(v, 0, sizeof(*v));
	int rc = read_check(s, have);
	if (rc == -ENOENT || (!rc && sodium_memcmp(have, s->master_check, 32) != 0)) {
		snprintf(s->errmsg, sizeof(s->errmsg), "the store's master key changed (rotated?) since this CAS "
			 "started: restart it with the new master key file");
		return -EKEYREJECTED;
	}
	if (rc)
		return rc;
	randombytes_buf(v->key, 32);
	cas_key_seal(sealed, s->master, volume, v->key);
	sqlite3_stmt *st = prep(s, "INSERT INTO volumes(name, key, created, updated) VALUES(?, ?, ?, ?)");
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, volume, -1, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 2, sealed, sizeof(sealed), SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, now_s());
	sqlite3_bind_int64(st, 4, now_s());
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? 0 : -EIO;
}

/* Inside the open transaction: r appended to the chain after the head, and the head moved to it. */
static int append(cas_store *s, cas_audit_rec *r)
{
	if (!s->audit_key) {
		snprintf(s->errmsg, sizeof(s->errmsg), "no audit key: nothing is recorded without one");
		return -EINVAL;
	}
	uint64_t seq = 0;
	uint8_t last[32] = { 0 }, hmac[32];
	sqlite3_stmt *st = prep(s, "SELECT seq, last FROM audit_head WHERE id = 1");
	if (!st)
		return -EIO;
	int r0 = sqlite3_step(st);
	if (r0 == SQLITE_ROW && sqlite3_column_bytes(st, 1) == 32) {
		seq = (uint64_t)sqlite3_column_int64(st, 0);
		memcpy(last, sqlite3_column_blob(st, 1), 32);
	}
	sqlite3_finalize(st);
	if (r0 != SQLITE_ROW && r0 != SQLITE_DONE)
		return -EIO;
	cas_audit_seal(r, s->audit_key, seq, last);
	cas_audit_head_mac(hmac, s->audit_key, r->seq, r->mac);
	st = prep(s, "INSERT INTO audit(seq, time, volume, client, op, result, old_version, old_root, new_version,"
		     " new_root, count, prev, mac) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)");
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)r->seq);
	sqlite3_bind_int64(st, 2, r->time);
	sqlite3_bind_text(st, 3, r->volume, -1, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 4, r->client, 32, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 5, r->op, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 6, r->result, -1, SQLITE_TRANSIENT);
	if (r->have_old) {
		sqlite3_bind_int64(st, 7, (sqlite3_int64)r->old_state.version);
		sqlite3_bind_blob(st, 8, r->old_state.root, 32, SQLITE_TRANSIENT);
	}
	if (r->have_new) {
		sqlite3_bind_int64(st, 9, (sqlite3_int64)r->new_state.version);
		sqlite3_bind_blob(st, 10, r->new_state.root, 32, SQLITE_TRANSIENT);
	}
	sqlite3_bind_int64(st, 11, r->count);
	sqlite3_bind_blob(st, 12, r->prev, 32, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 13, r->mac, 32, SQLITE_TRANSIENT);
	int rs = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rs != SQLITE_DONE)
		return -EIO;
	st = prep(s, "INSERT OR REPLACE INTO audit_head(id, seq, last, mac) VALUES(1, ?, ?, ?)");
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)r->seq);
	sqlite3_bind_blob(st, 2, r->mac, 32, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 3, hmac, 32, SQLITE_TRANSIENT);
	rs = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rs != SQLITE_DONE)
		return -EIO;
	SQ(s)->audit_pending = r->seq;
	return 0;
}

static int audit(cas_store *s, const char *volume, const uint8_t client[32], const char *op, const char *result,
		 const cas_state *old, const cas_state *nw)
{
	cas_audit_rec r;
	cas_audit_rec_fill(&r, volume, client, op, result, old, nw);
	return append(s, &r);
}

static int sq_audit_add(cas_store *s, const cas_audit_rec *rec)
{
	cas_audit_rec r = *rec;
	lock(s);
	int rc = begin(s);
	if (!rc) {
		rc = append(s, &r);
		rc = rc ? rollback(s, rc) : commit(s);
	}
	unlock(s);
	return rc;
}

static int sq_audit_head(cas_store *s, uint64_t *seq, uint8_t last[32], uint8_t mac[32])
{
	*seq = 0;
	memset(last, 0, 32);
	memset(mac, 0, 32);
	lock(s);
	int rc = -EIO;
	sqlite3_stmt *st = prep(s, "SELECT seq, last, mac FROM audit_head WHERE id = 1");
	if (st) {
		int r = sqlite3_step(st);
		if (r == SQLITE_ROW) {
			*seq = (uint64_t)sqlite3_column_int64(st, 0);
			if (sqlite3_column_bytes(st, 1) == 32)
				memcpy(last, sqlite3_column_blob(st, 1), 32);
			if (sqlite3_column_bytes(st, 2) == 32)
				memcpy(mac, sqlite3_column_blob(st, 2), 32);
		}
		rc = r == SQLITE_ROW || r == SQLITE_DONE ? 0 : fail(s, -EIO);
		sqlite3_finalize(st);
	}
	unlock(s);
	return rc;
}

static int sq_session_count(cas_store *s, const uint8_t creator[32], unsigned *n)
{
	lock(s);
	int rc = -EIO;
	sqlite3_stmt *st = prep(s, "SELECT count(*) FROM sessions WHERE creator = ?");
	if (st) {
		sqlite3_bind_blob(st, 1, creator, 32, SQLITE_TRANSIENT);
		if (sqlite3_step(st) == SQLITE_ROW) {
			*n = (unsigned)sqlite3_column_int64(st, 0);
			rc = 0;
		} else {
			fail(s, -EIO);
		}
		sqlite3_finalize(st);
	}
	unlock(s);
	return rc;
}

static int sq_volume_key(cas_store *s, const char *volume, const uint8_t client[32], uint8_t key[32])
{
	struct vrow v;
	lock(s);
	int rc = begin(s);
	if (!rc) {
		rc = read_vol(s, volume, &v);
		if (rc == -ENOENT)
			rc = new_vol(s, volume, &v);
		if (!rc)
			rc = audit(s, volume, client, "key", "ok", NULL, NULL);
		rc = rc ? rollback(s, rc) : commit(s);
		if (!rc)
			memcpy(key, v.key, 32);
	}
	sodium_memzero(&v, sizeof(v));
	unlock(s);
	return rc;
}

/* A refused change is still audited, and the audit record committed: code, or the error of recording it. */
static int refuse(cas_store *s, const char *volume, const uint8_t client[32], const char *op, const char *result,
		  const cas_state *old, const cas_state *next, int code)
{
	int rc = audit(s, volume, client, op, result, old, next);
	rc = rc ? rollback(s, rc) : commit(s);
	return rc ? rc : code;
}

/* Inside the open transaction: the volume's new state, and its volume id when volid is given. */
static int write_vol(cas_store *s, const char *volume, const uint8_t *volid, const cas_state *st)
{
	sqlite3_stmt *q = prep(s, volid ? "UPDATE volumes SET version=?, root=?, updated=?, volid=? WHERE name=?"
					: "UPDATE volumes SET version=?, root=?, updated=? WHERE name=?");
	if (!q)
		return -EIO;
	int i = 4;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)st->version);
	sqlite3_bind_blob(q, 2, st->root, 32, SQLITE_TRANSIENT);
	sqlite3_bind_int64(q, 3, now_s());
	if (volid)
		sqlite3_bind_blob(q, i++, volid, 16, SQLITE_TRANSIENT);
	sqlite3_bind_text(q, i, volume, -1, SQLITE_TRANSIENT);
	int r = sqlite3_step(q);
	sqlite3_finalize(q);
	return r == SQLITE_DONE && sqlite3_changes(SQ(s)->db) == 1 ? 0 : -EIO;
}

/* An accepted change: the new state written and audited, and the transaction ended either way. */
static int take_change(cas_store *s, const char *volume, const uint8_t client[32], const char *op,
		       const uint8_t *volid, const cas_state *old, const cas_state *next)
{
	int rc = write_vol(s, volume, volid, next);
	rc = rc ? rc : audit(s, volume, client, op, "ok", old, next);
	return rc ? rollback(s, rc) : commit(s);
}

static int sq_register(cas_store *s, const char *volume, const uint8_t client[32], const uint8_t volid[16],
		       const cas_state *nst, cas_state *cur)
{
	struct vrow v;
	lock(s);
	int rc = begin(s);
	if (rc)
		goto out;
	rc = read_vol(s, volume, &v);
	if (rc == -ENOENT)
		rc = new_vol(s, volume, &v);
	if (rc) {
		rc = rollback(s, rc);
		goto out;
	}
	if (v.registered) {
		if (cur)
			*cur = v.st;
		rc = refuse(s, volume, client, "register", "exists", &v.st, nst, -EEXIST);
		goto out;
	}
	rc = take_change(s, volume, client, "register", volid, NULL, nst);
	if (!rc && cur)
		*cur = *nst;
out:
	sodium_memzero(&v, sizeof(v));
	unlock(s);
	return rc;
}

static int sq_get(cas_store *s, const char *volume, uint8_t volid[16], cas_state *out, int *registered,
		  uint8_t key[32])
{
	struct vrow v;
	lock(s);
	int rc = read_vol(s, volume, &v);
	if (rc == -ENOENT) {
		*registered = 0;
		rc = 0;
	} else if (!rc) {
		*registered = v.registered;
		memcpy(volid, v.volid, 16);
		*out = v.st;
		if (key)
			memcpy(key, v.key, 32);
	}
	sodium_memzero(&v, sizeof(v));
	unlock(s);
	return rc;
}

/* Opens a transaction and reads the registered row of volume with the id volid into v; on failure the
 * transaction is rolled back: -ENOENT not registered, -EXDEV another volume id, -EIO. */
static int begin_registered(cas_store *s, const char *volume, const uint8_t volid[16], struct vrow *v)
{
	int rc = begin(s);
	if (rc)
		return rc;
	rc = read_vol(s, volume, v);
	if (!rc && !v->registered)
		rc = -ENOENT;
	if (!rc && memcmp(v->volid, volid, 16))
		rc = -EXDEV;
	return rc ? rollback(s, rc) : 0;
}

static int sq_cas(cas_store *s, const char *volume, const uint8_t client[32], const uint8_t volid[16],
		  const cas_state *expect, const cas_state *next, int enforce, cas_state *cur)
{
	struct vrow v;
	lock(s);
	int rc = begin_registered(s, volume, volid, &v);
	if (rc)
		goto out;
	if (cur)
		*cur = v.st;
	if (enforce && (v.st.version != expect->version || sodium_memcmp(v.st.root, expect->root, 32) != 0)) {
		rc = refuse(s, volume, client, "cas", "conflict", &v.st, next, -ESTALE);
		goto out;
	}
	rc = take_change(s, volume, client, "cas", NULL, &v.st, next);
	if (!rc && cur)
		*cur = *next;
out:
	sodium_memzero(&v, sizeof(v));
	unlock(s);
	return rc;
}

static int sq_lease(cas_store *s, const char *volume, const uint8_t volid[16], const uint8_t holder[16], int64_t now,
		    unsigned ttl, cas_state *cur, int64_t *expires)
{
	struct vrow v;
	sqlite3_stmt *st = NULL;
	lock(s);
	int rc = begin_registered(s, volume, volid, &v);
	if (rc)
		goto out;
	*cur = v.st;
	rc = -EIO;
	if (!(st = prep(s, "SELECT holder, expires FROM leases WHERE volume=?")))
		goto undo;
	sqlite3_bind_text(st, 1, volume, -1, SQLITE_TRANSIENT);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		int mine = sqlite3_column_bytes(st, 0) == 16 && !memcmp(sqlite3_column_blob(st, 0), holder, 16);
		*expires = (int64_t)sqlite3_column_int64(st, 1);
		if (!mine && (!ttl || *expires > now)) {
			rc = ttl ? -EBUSY : 0;
			goto undo;
		}
	} else if (r != SQLITE_DONE) {
		goto undo;
	}
	sqlite3_finalize(st);
	if (!(st = prep(s, ttl ? "INSERT OR REPLACE INTO leases(volume, holder, expires) VALUES(?, ?, ?)"
			       : "DELETE FROM leases WHERE volume=? AND holder=?")))
		goto undo;
	sqlite3_bind_text(st, 1, volume, -1, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 2, holder, 16, SQLITE_TRANSIENT);
	if (ttl)
		sqlite3_bind_int64(st, 3, now + ttl);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto undo;
	sqlite3_finalize(st);
	st = NULL;
	rc = commit(s);
	goto out;
undo:
	rc = rollback(s, rc);
out:
	sqlite3_finalize(st);
	sodium_memzero(&v, sizeof(v));
	unlock(s);
	return rc;
}

static int sq_nonce_use(cas_store *s, const uint8_t nonce[32], int64_t now)
{
	lock(s);
	struct sqlite_store *q = SQ(s);
	int rc = 0;
	if (++q->nonces >= 256) {
		/* Nonces older than the window are refused by their time anyway. */
		sqlite3_stmt *d = prep(s, "DELETE FROM nonces WHERE time < ?");
		if (d) {
			sqlite3_bind_int64(d, 1, now - 2 * CAS_TIME_WINDOW);
			sqlite3_step(d);
			sqlite3_finalize(d);
		}
		q->nonces = 0;
	}
	sqlite3_stmt *st = prep(s, "INSERT INTO nonces(nonce, time) VALUES(?, ?)");
	if (!st) {
		unlock(s);
		return -EIO;
	}
	sqlite3_bind_blob(st, 1, nonce, 32, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, now);
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	if (r == SQLITE_CONSTRAINT)
		rc = -EALREADY;
	else if (r != SQLITE_DONE)
		rc = fail(s, -EIO);
	unlock(s);
	return rc;
}

static int sq_audit_list(cas_store *s, const char *prefix, uint64_t after, cas_audit_rec **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	lock(s);
	sqlite3_stmt *st = prep(s, "SELECT seq, time, volume, client, op, result, old_version, old_root, new_version,"
				   " new_root, count, prev, mac FROM audit WHERE substr(volume, 1, length(?1)) = ?1 AND seq > ?2"
				   " ORDER BY seq LIMIT 1000");
	if (!st) {
		unlock(s);
		return -EIO;
	}
	sqlite3_bind_text(st, 1, prefix, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)after);
	size_t cap = 0;
	int r, rc = 0;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		cas_audit_rec rec, *a = &rec;
		memset(a, 0, sizeof(*a));
		a->seq = (uint64_t)sqlite3_column_int64(st, 0);
		a->time = sqlite3_column_int64(st, 1);
		snprintf(a->volume, sizeof(a->volume), "%s", (const char *)sqlite3_column_text(st, 2));
		if (sqlite3_column_bytes(st, 3) == 32)
			memcpy(a->client, sqlite3_column_blob(st, 3), 32);
		snprintf(a->op, sizeof(a->op), "%s", (const char *)sqlite3_column_text(st, 4));
		snprintf(a->result, sizeof(a->result), "%s", (const char *)sqlite3_column_text(st, 5));
		if (sqlite3_column_type(st, 6) != SQLITE_NULL && sqlite3_column_bytes(st, 7) == 32) {
			a->have_old = 1;
			a->old_state.version = (uint64_t)sqlite3_column_int64(st, 6);
			memcpy(a->old_state.root, sqlite3_column_blob(st, 7), 32);
		}
		if (sqlite3_column_type(st, 8) != SQLITE_NULL && sqlite3_column_bytes(st, 9) == 32) {
			a->have_new = 1;
			a->new_state.version = (uint64_t)sqlite3_column_int64(st, 8);
			memcpy(a->new_state.root, sqlite3_column_blob(st, 9), 32);
		}
		a->count = (uint32_t)sqlite3_column_int64(st, 10);
		if (sqlite3_column_bytes(st, 11) == 32)
			memcpy(a->prev, sqlite3_column_blob(st, 11), 32);
		if (sqlite3_column_bytes(st, 12) == 32)
			memcpy(a->mac, sqlite3_column_blob(st, 12), 32);
		rc = VEC_PUSH(*out, *n, cap, rec);
		if (rc)
			break;
	}
	if (!rc && r != SQLITE_DONE)
		rc = fail(s, -EIO);
	sqlite3_finalize(st);
	unlock(s);
	if (rc) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

/* The master check in cas_meta, as hex: 0 found, -ENOENT none, -EIO. */
static int read_check(cas_store *s, uint8_t check[32])
{
	sqlite3_stmt *st = prep(s, "SELECT v FROM cas_meta WHERE k = 'master_check'");
	if (!st)
		return -EIO;
	int r = sqlite3_step(st), rc = -EIO;
	if (r == SQLITE_ROW)
		rc = fs_unhex(check, 32, (const char *)sqlite3_column_text(st, 0)) == 0 ? 0 : -EIO;
	else if (r == SQLITE_DONE)
		rc = -ENOENT;
	sqlite3_finalize(st);
	if (rc == -EIO)
		snprintf(s->errmsg, sizeof(s->errmsg), "cannot read the master check: %s", sqlite3_errmsg(SQ(s)->db));
	return rc;
}

static int write_check(cas_store *s, const uint8_t check[32])
{
	char hex[65];
	fs_hex(hex, check, 32);
	sqlite3_stmt *st = prep(s, "INSERT OR REPLACE INTO cas_meta(k, v) VALUES('master_check', ?)");
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, hex, -1, SQLITE_TRANSIENT);
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? 0 : -EIO;
}

static int sq_bind_master(cas_store *s, const uint8_t want[32])
{
	uint8_t have[32];
	lock(s);
	int rc = begin(s);
	if (rc)
		goto out;
	rc = read_check(s, have);
	if (!rc) {
		rc = sodium_memcmp(have, want, 32) == 0 ? 0 : -EKEYREJECTED;
		rc = rollback(s, rc);
		goto out;
	}
	if (rc != -ENOENT) {
		rc = rollback(s, rc);
		goto out;
	}
	/* No check yet: a new store takes this master key; one with volumes is from before sealing. */
	sqlite3_stmt *st = prep(s, "SELECT count(*) FROM volumes");
	int64_t nvol = -1;
	if (st && sqlite3_step(st) == SQLITE_ROW)
		nvol = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (nvol < 0)
		rc = rollback(s, -EIO);
	else if (nvol > 0)
		rc = rollback(s, -EPROTO);
	else
		rc = write_check(s, want) ? rollback(s, -EIO) : commit(s);
out:
	unlock(s);
	return rc;
}

/* Copies of the old form of the keys out of the file and its log: the freed pages are zeroed by
 * secure_delete, VACUUM rewrites the file, and the log is emptied and truncated. */
static int scrub(cas_store *s)
{
	if (exec(SQ(s), "VACUUM") || exec(SQ(s), "PRAGMA wal_checkpoint(TRUNCATE)"))
		return fail(s, -EIO);
	return 0;
}

static int sq_rekey(cas_store *s, const uint8_t *old, unsigned *n)
{
	uint8_t have[32], want[32], key[32], sealed[CAS_SEALED_KEY_BYTES];
	sqlite3_stmt *st = NULL, *up = NULL;
	*n = 0;
	cas_master_check(want, s->master);
	lock(s);
	int rc = begin(s);
	if (rc)
		goto out;
	rc = read_check(s, have);
	if (rc == -EIO)
		goto undo;
	if (old) {
		uint8_t oc[32];
		cas_master_check(oc, old);
		rc = !rc && sodium_memcmp(have, oc, 32) == 0 ? 0 : -EKEYREJECTED;
	} else {
		rc = rc == -ENOENT ? 0 : -EKEYREJECTED;
	}
	if (rc)
		goto undo;
	rc = -EIO;
	if (!(st = prep(s, "SELECT name, key FROM volumes")) ||
	    !(up = prep(s, "UPDATE volumes SET key = ? WHERE name = ?")))
		goto undo;
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const void *blob = sqlite3_column_blob(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 1);
		int bad = old ? cas_key_open(key, old, name, blob, len) != 0 : len != 32;
		if (bad) {
			snprintf(s->errmsg, sizeof(s->errmsg), "volume %s: its key %s", name,
				 old ? "does not open under the old master key" : "is not a clear 32-byte key");
			rc = -EBADMSG;
			goto undo;
		}
		if (!old)
			memcpy(key, blob, 32);
		cas_key_seal(sealed, s->master, name, key);
		sqlite3_reset(up);
		sqlite3_bind_blob(up, 1, sealed, sizeof(sealed), SQLITE_TRANSIENT);
		sqlite3_bind_text(up, 2, name, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(up) != SQLITE_DONE)
			goto undo;
		(*n)++;
	}
	if (r != SQLITE_DONE || write_check(s, want))
		goto undo;
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	st = up = NULL;
	rc = commit(s);
	if (!rc)
		rc = scrub(s);
	goto out;
undo:
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	st = up = NULL;
	rc = rollback(s, rc);
	*n = 0;
out:
	sodium_memzero(key, sizeof(key));
	unlock(s);
	return rc;
}

static void sq_close(cas_store *s)
{
	struct sqlite_store *q = SQ(s);
	if (q->db)
		sqlite3_close(q->db);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

static const struct cas_store_ops sqlite_ops = {
	.session_put = sq_session_put,
	.session_get = sq_session_get,
	.volume_key = sq_volume_key,
	.vol_register = sq_register,
	.vol_get = sq_get,
	.vol_cas = sq_cas,
	.vol_lease = sq_lease,
	.nonce_use = sq_nonce_use,
	.audit_list = sq_audit_list,
	.audit_add = sq_audit_add,
	.audit_head = sq_audit_head,
	.session_count = sq_session_count,
	.bind_master = sq_bind_master,
	.rekey = sq_rekey,
	.close = sq_close,
};

static int sqlite_open(const char *path, cas_store **out, char *err, size_t errlen)
{
	struct sqlite_store *q = calloc(1, sizeof(*q));
	if (!q)
		return fs_reason(err, errlen, -ENOMEM, "out of memory");
	q->base.ops = &sqlite_ops;
	pthread_mutex_init(&q->mu, NULL);
	mode_t old = umask(077); /* the store holds volume keys */
	int r = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
	umask(old);
	if (r != SQLITE_OK) {
		r = fs_reason(err, errlen, -EIO, "store sqlite:%s: %s", path, q->db ? sqlite3_errmsg(q->db) : "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(q->db, 10000);
	/* secure_delete: a key's old form, in a page freed or rewritten, is overwritten with zeros. */
	if (exec(q, "PRAGMA secure_delete=ON") || exec(q, "PRAGMA journal_mode=WAL") || exec(q, "PRAGMA synchronous=FULL") || exec(q, "BEGIN IMMEDIATE") ||
	    exec(q, schema) || exec(q, "COMMIT")) {
		r = fs_reason(err, errlen, -EIO, "store sqlite:%s: %s", path, sqlite3_errmsg(q->db));
		goto fail;
	}
	/* A store from before the audit chain: its log cannot be verified, and new records would not fit. */
	sqlite3_stmt *st;
	int chained = 0;
	if (sqlite3_prepare_v2(q->db, "SELECT 1 FROM pragma_table_info('audit') WHERE name = 'mac'", -1, &st, NULL) ==
	    SQLITE_OK) {
		chained = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_finalize(st);
	}
	if (!chained) {
		r = fs_reason(err, errlen, -EPROTO, "store sqlite:%s: its audit log is not chained (made by an older"
				" fshield); start with a new store, keeping this file for its old records", path);
		goto fail;
	}
	/* journal_mode=WAL is refused silently on some file systems: insist. */
	int wal = 0;
	if (sqlite3_prepare_v2(q->db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK) {
		wal = sqlite3_step(st) == SQLITE_ROW && !strcmp((const char *)sqlite3_column_text(st, 0), "wal");
		sqlite3_finalize(st);
	}
	if (!wal) {
		r = fs_reason(err, errlen, -EIO, "store sqlite:%s: cannot use write-ahead logging there", path);
		goto fail;
	}
	chmod(path, 0600);
	*out = &q->base;
	return 0;
fail:
	sq_close(&q->base);
	return r;
}
