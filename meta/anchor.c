/* Trust anchors: "file:PATH", a local SQLite trust store kept apart from the backing directory,
 * and "none", the explicit opt-out. */
#include "meta/anchor.h"

#include <errno.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fs_anchor {
	char *uri;
	int none;
	sqlite3 *db;
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
		ERR("trust anchor %s: the CAS client is not part of this build", uri);
		rc = -ENOTSUP;
	} else {
		ERR("trust anchor %s: unknown kind (use file:/ABSOLUTE/PATH or none)", uri);
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
	free(a->uri);
	free(a);
}

const char *fs_anchor_uri(const fs_anchor *a) { return a->uri; }
int fs_anchor_is_none(const fs_anchor *a) { return a->none; }
void fs_anchor_id(const fs_anchor *a, uint8_t id[16]) { memcpy(id, a->id, 16); }

int fs_anchor_register(fs_anchor *a, const uint8_t volid[16], const fs_anchor_state *st, char *err, size_t errlen)
{
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
