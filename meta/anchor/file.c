/* "file:PATH": a local SQLite trust store, kept apart from the backing directory. It has an identity of
 * its own (16 random bytes made on first use), one row per volume, and one per writer lease. */
#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "meta/anchor/kind.h"
#include "meta/common/boot.h"
#include "meta/common/reason.h"

/* The open store, and the file it was opened as: a store deleted or replaced while a volume is mounted is
 * noticed at the next write (in_place). */
struct file_store {
	sqlite3 *db;
	char *path;
	dev_t dev;
	ino_t ino;
	int saved; /* its contents were saved beside the path (in_place) */
};
#define FS_(a) ((struct file_store *)(a)->priv)
#define DB(a) (FS_(a)->db)

/* mkdir -p of the trust store's parent, private to root. */
static int make_parent(const char *path)
{
	char *d = strdup(path);
	int rc = 0;
	if (!d)
		return -ENOMEM;
	for (char *p = d + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(d, 0700) != 0 && errno != EEXIST) {
			rc = -errno;
			goto out;
		}
		*p = '/';
	}
out:
	free(d);
	return rc;
}

static int exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static int db_fail(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	return fs_reason(err, errlen, -EIO, "trust store%s%s: %s", path ? " " : "", path ? path : "",
			 sqlite3_errmsg(db));
}

/* An existing file that is not a trust store is refused, never turned into one. */
/* 1 for a trust store, 0 for another database, -errno when it cannot be read on this machine's limits
 * (out of descriptors or memory: not the store's fault). */
static int is_trust_store(sqlite3 *db)
{
	sqlite3_stmt *q;
	int n = 0, r = SQLITE_ERROR;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN ('store','volumes')",
			       -1, &q, NULL) == SQLITE_OK) {
		if ((r = sqlite3_step(q)) == SQLITE_ROW)
			n = sqlite3_column_int(q, 0);
		sqlite3_finalize(q);
	}
	int se = r == SQLITE_ROW ? 0 : sqlite3_system_errno(db);
	if (se == EMFILE || se == ENFILE || se == ENOMEM)
		return -se;
	return n == 2;
}

/* The store's identity, made once, on first use. */
static int load_identity(fs_anchor *a, sqlite3 *db, const char *path, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	int rc, have = 0;
	if (exec(db, "BEGIN IMMEDIATE") != SQLITE_OK)
		return db_fail(db, path, err, errlen);
	if (sqlite3_prepare_v2(db, "SELECT id FROM store", -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_bytes(s, 0) == 16) {
			memcpy(a->id, sqlite3_column_blob(s, 0), 16);
			have = 1;
		}
		sqlite3_finalize(s);
	}
	if (!have) {
		randombytes_buf(a->id, 16);
		if (sqlite3_prepare_v2(db, "INSERT INTO store(id) VALUES(?)", -1, &s, NULL) != SQLITE_OK)
			goto fail;
		sqlite3_bind_blob(s, 1, a->id, 16, SQLITE_TRANSIENT);
		rc = sqlite3_step(s);
		sqlite3_finalize(s);
		if (rc != SQLITE_DONE)
			goto fail;
	}
	if (exec(db, "COMMIT") != SQLITE_OK)
		return db_fail(db, path, err, errlen);
	return 0;
fail:
	rc = db_fail(db, path, err, errlen);
	exec(db, "ROLLBACK");
	return rc;
}

static int file_open(fs_anchor *a, const char *path, int create, const cas_tls *tls, char *err, size_t errlen)
{
	(void)tls;
	/* file:/path and file:///path; file://host/... names a host, which a local store cannot. */
	if (path[0] != '/')
		return anchor_file_relative(a->uri, err, errlen);
	if (!strncmp(path, "//", 2)) {
		if (path[2] != '/')
			return anchor_file_host(a->uri, err, errlen);
		path += 2;
	}
	struct stat st;
	if (stat(path, &st) != 0) {
		if (errno != ENOENT || !create)
			return fs_reason(err, errlen, -errno, "trust store %s: %s", path, strerror(errno));
		int rc = make_parent(path);
		if (rc)
			return fs_reason(err, errlen, rc, "trust store %s: cannot create its directory: %s", path,
					 strerror(-rc));
	}
	sqlite3 *db = NULL;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
	struct file_store *fs = calloc(1, sizeof(*fs));
	if (!fs || !(fs->path = strdup(path))) {
		free(fs);
		return fs_reason(err, errlen, -ENOMEM, "out of memory");
	}
	a->priv = fs;
	int rc = sqlite3_open_v2(path, &db, flags, NULL);
	fs->db = db;
	if (rc != SQLITE_OK)
		return fs_reason(err, errlen, -EIO, "trust store %s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
	chmod(path, 0600);
	sqlite3_busy_timeout(db, 10000);
	int known = create ? 1 : is_trust_store(db);
	if (known < 0)
		return fs_reason(err, errlen, -EIO, "trust store %s: cannot be read: %s", path, strerror(-known));
	if (!known)
		return fs_reason(err, errlen, -ENOENT, "trust store %s: not an fshield trust store", path);
	if (exec(db, "PRAGMA journal_mode=WAL") != SQLITE_OK || exec(db, "PRAGMA synchronous=FULL") != SQLITE_OK ||
	    exec(db, "CREATE TABLE IF NOT EXISTS store(id BLOB NOT NULL);"
		     "CREATE TABLE IF NOT EXISTS volumes(volid BLOB PRIMARY KEY, version INTEGER NOT NULL,"
		     " root BLOB NOT NULL, updated INTEGER NOT NULL);"
		     "CREATE TABLE IF NOT EXISTS leases(volid BLOB PRIMARY KEY, holder BLOB NOT NULL,"
		     " host TEXT NOT NULL, pid INTEGER NOT NULL, expires INTEGER NOT NULL)") != SQLITE_OK)
		return db_fail(db, path, err, errlen);
	if ((rc = load_identity(a, db, path, err, errlen)) != 0)
		return rc;
	if (stat(path, &st) != 0)
		return fs_reason(err, errlen, -errno, "trust store %s: %s", path, strerror(errno));
	fs->dev = st.st_dev;
	fs->ino = st.st_ino;
	return 0;
}

static void file_close(fs_anchor *a)
{
	struct file_store *fs = a->priv;
	if (!fs)
		return;
	sqlite3_close(fs->db);
	free(fs->path);
	free(fs);
	a->priv = NULL;
}

/* A store at the path again, with this store's identity (put back after a deletion): used from now on. */
static int reopen_restored(fs_anchor *a, const struct stat *st)
{
	struct file_store *fs = FS_(a);
	sqlite3 *db = NULL;
	sqlite3_stmt *q;
	int same = 0;
	if (sqlite3_open_v2(fs->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK &&
	    is_trust_store(db) && sqlite3_prepare_v2(db, "SELECT id FROM store", -1, &q, NULL) == SQLITE_OK) {
		same = sqlite3_step(q) == SQLITE_ROW && sqlite3_column_bytes(q, 0) == 16 &&
		       !memcmp(sqlite3_column_blob(q, 0), a->id, 16);
		sqlite3_finalize(q);
	}
	if (!same || exec(db, "PRAGMA journal_mode=WAL") != SQLITE_OK || exec(db, "PRAGMA synchronous=FULL") != SQLITE_OK) {
		sqlite3_close(db);
		return 0;
	}
	sqlite3_busy_timeout(db, 10000);
	sqlite3_close(fs->db);
	fs->db = db;
	fs->dev = st->st_dev;
	fs->ino = st->st_ino;
	fs->saved = 0;
	return 1;
}

/* Before every write: the open store must still be the file at its path. Otherwise the write would go to
 * a deleted file (lost at unmount, and the next mount refused) or miss the file now there: the write is
 * refused, and the store's contents are saved once to PATH.saved so that it can be put back. */
static int in_place(fs_anchor *a, char *err, size_t errlen)
{
	struct file_store *fs = FS_(a);
	struct stat st;
	int there = stat(fs->path, &st) == 0;
	if (there && st.st_dev == fs->dev && st.st_ino == fs->ino && st.st_nlink > 0)
		return 0;
	if (there && reopen_restored(a, &st))
		return 0;
	char saved[4200];
	snprintf(saved, sizeof(saved), "%s.saved", fs->path);
	if (!fs->saved) {
		char *sql = sqlite3_mprintf("VACUUM INTO %Q", saved);
		fs->saved = sql && exec(fs->db, sql) == SQLITE_OK;
		sqlite3_free(sql);
		if (fs->saved)
			chmod(saved, 0600);
	}
	return fs_reason(err, errlen, -EIO,
			 "trust store %s was %s while in use; nothing is committed until it is back. %s%s%s", fs->path,
			 there ? "replaced by another file" : "deleted",
			 fs->saved ? "Its last state was saved: move " : "Its last state could not be saved beside it: put it back from a backup of ",
			 fs->saved ? saved : fs->path, fs->saved ? " back to that path; the next commit (fsync, or a mount) completes the held ones" : "");
}

static int file_register(fs_anchor *a, const uint8_t volid[16], const fs_anchor_state *st, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(DB(a), "INSERT INTO volumes(volid, version, root, updated) VALUES(?,?,?,strftime('%s'))",
			       -1, &s, NULL) != SQLITE_OK)
		return db_fail(DB(a), NULL, err, errlen);
	sqlite3_bind_blob(s, 1, volid, 16, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)st->version);
	sqlite3_bind_blob(s, 3, st->root, 32, SQLITE_TRANSIENT);
	int rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc == SQLITE_CONSTRAINT)
		return fs_reason(err, errlen, -EEXIST, "trust store: this volume id is registered already");
	if (rc != SQLITE_DONE)
		return db_fail(DB(a), NULL, err, errlen);
	return 0;
}

static int file_get(fs_anchor *a, const uint8_t volid[16], fs_anchor_state *out, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(DB(a), "SELECT version, root FROM volumes WHERE volid=?", -1, &s, NULL) != SQLITE_OK)
		return db_fail(DB(a), NULL, err, errlen);
	sqlite3_bind_blob(s, 1, volid, 16, SQLITE_TRANSIENT);
	int rc = sqlite3_step(s), ret = 0;
	if (rc == SQLITE_ROW && sqlite3_column_bytes(s, 1) == 32) {
		out->version = (uint64_t)sqlite3_column_int64(s, 0);
		memcpy(out->root, sqlite3_column_blob(s, 1), 32);
	} else if (rc == SQLITE_DONE) {
		ret = fs_reason(err, errlen, -ENOENT, "volume is not registered with trust anchor %s", a->uri);
	} else {
		ret = db_fail(DB(a), NULL, err, errlen);
	}
	sqlite3_finalize(s);
	return ret;
}

static int file_cas(fs_anchor *a, const uint8_t volid[16], const fs_anchor_state *expect,
		    const fs_anchor_state *next, fs_anchor_state *current, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	int rc = in_place(a, err, errlen);
	if (rc)
		return rc;
	if (sqlite3_prepare_v2(DB(a),
			       "UPDATE volumes SET version=?, root=?, updated=strftime('%s') "
			       "WHERE volid=? AND version=? AND root=?",
			       -1, &s, NULL) != SQLITE_OK)
		return db_fail(DB(a), NULL, err, errlen);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)next->version);
	sqlite3_bind_blob(s, 2, next->root, 32, SQLITE_TRANSIENT);
	sqlite3_bind_blob(s, 3, volid, 16, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)expect->version);
	sqlite3_bind_blob(s, 5, expect->root, 32, SQLITE_TRANSIENT);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return db_fail(DB(a), NULL, err, errlen);
	if (sqlite3_changes(DB(a)) == 1)
		return 0;
	fs_anchor_state cur;
	if ((rc = file_get(a, volid, &cur, err, errlen)) != 0)
		return rc;
	return anchor_stale(&cur, expect, current, err, errlen);
}

/* Where a pid means this process: the boot and the pid namespace. A lease taken under the same host by a
 * process that no longer exists is free at once (a killed daemon); any other lease lapses at its time. */
static void this_host(char *out, size_t n)
{
	char boot[64], ns[64] = "";
	fs_boot_id(boot, sizeof(boot));
	ssize_t l = readlink("/proc/self/ns/pid", ns, sizeof(ns) - 1);
	ns[l > 0 ? l : 0] = 0;
	snprintf(out, n, "%s %s", boot, ns);
}

static int lease_is_dead(const char *host, const char *me, long pid)
{
	return !strcmp(host, me) && pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* One transaction: look at the volume's lease, take, renew or drop it, and read the volume's state. */
static int file_lease(fs_anchor *a, const uint8_t volid[16], const uint8_t holder[16], unsigned ttl, fs_anchor_state *cur,
		      char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	char me[200];
	int rc = in_place(a, err, errlen);
	if (rc)
		return rc;
	sqlite3 *db = DB(a);
	long long now = (long long)time(NULL);
	this_host(me, sizeof(me));
	if (exec(db, "BEGIN IMMEDIATE") != SQLITE_OK)
		return db_fail(db, NULL, err, errlen);
	if ((rc = file_get(a, volid, cur, err, errlen)) != 0)
		goto out;
	rc = -EIO;
	if (sqlite3_prepare_v2(db, "SELECT holder, host, pid, expires FROM leases WHERE volid=?", -1, &s, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_blob(s, 1, volid, 16, SQLITE_TRANSIENT);
	int r = sqlite3_step(s);
	if (r == SQLITE_ROW) {
		int mine = sqlite3_column_bytes(s, 0) == 16 && !memcmp(sqlite3_column_blob(s, 0), holder, 16);
		const char *host = (const char *)sqlite3_column_text(s, 1);
		long pid = (long)sqlite3_column_int64(s, 2);
		long long expires = (long long)sqlite3_column_int64(s, 3);
		if (!ttl && !mine) {
			rc = 0; /* someone else's now: leave it */
			goto out;
		}
		if (!mine && expires > now && !lease_is_dead(host ? host : "", me, pid)) {
			rc = fs_reason(err, errlen, -EBUSY,
				       "the volume is open read-write elsewhere: trust store %s holds its writer lease for "
				       "process %ld%s, for %lld s more",
				       a->uri + 5, pid, host && !strcmp(host, me) ? " on this host" : " on another host",
				       expires - now);
			goto out;
		}
	} else if (r != SQLITE_DONE) {
		goto fail;
	}
	sqlite3_finalize(s);
	s = NULL;
	if (!ttl) {
		if (sqlite3_prepare_v2(db, "DELETE FROM leases WHERE volid=? AND holder=?", -1, &s, NULL) != SQLITE_OK)
			goto fail;
		sqlite3_bind_blob(s, 2, holder, 16, SQLITE_TRANSIENT);
	} else {
		if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO leases(volid, holder, host, pid, expires) VALUES(?,?,?,?,?)",
				       -1, &s, NULL) != SQLITE_OK)
			goto fail;
		sqlite3_bind_blob(s, 2, holder, 16, SQLITE_TRANSIENT);
		sqlite3_bind_text(s, 3, me, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(s, 4, (sqlite3_int64)getpid());
		sqlite3_bind_int64(s, 5, (sqlite3_int64)(now + ttl));
	}
	sqlite3_bind_blob(s, 1, volid, 16, SQLITE_TRANSIENT);
	if (sqlite3_step(s) != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(s);
	s = NULL;
	if (exec(db, "COMMIT") != SQLITE_OK)
		goto fail;
	return 0;
fail:
	rc = db_fail(db, NULL, err, errlen);
out:
	sqlite3_finalize(s);
	exec(db, "ROLLBACK");
	return rc;
}

const struct anchor_ops anchor_file_ops = {
	.prefix = "file:",
	.open = file_open,
	.close = file_close,
	.reg = file_register,
	.get = file_get,
	.cas = file_cas,
	.lease = file_lease,
};
