#include "meta/store.h"

#include "meta/common/beneath.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
	Q_GET_VOL, Q_PUT_VOL, Q_SET_STATE, Q_GET_BUCKETS, Q_PUT_BUCKET, Q_INODES_IN_BUCKET, Q_ALL_INODES,
	Q_PUT_INODE, Q_DEL_INODE, Q_DIRENTS_OF, Q_ALL_DIRENTS, Q_PUT_DIRENT, Q_DEL_DIRENT, Q_CHUNKS_OF,
	Q_ALL_CHUNKS, Q_PUT_CHUNK, Q_DEL_CHUNK, Q_DEL_CHUNKS_OF, Q_COUNT
};

static const char *const sql[Q_COUNT] = {
	[Q_GET_VOL] = "SELECT version, root, parent, state FROM volume WHERE id=1",
	[Q_PUT_VOL] = "INSERT OR REPLACE INTO volume(id, version, root, parent, state) VALUES(1,?,?,?,?)",
	[Q_SET_STATE] = "UPDATE volume SET state=? WHERE id=1",
	[Q_GET_BUCKETS] = "SELECT b, digest FROM buckets ORDER BY b",
	[Q_PUT_BUCKET] = "INSERT OR REPLACE INTO buckets(b, digest) VALUES(?,?)",
	[Q_INODES_IN_BUCKET] = "SELECT ino, row FROM inodes WHERE bkt=? ORDER BY ino",
	[Q_ALL_INODES] = "SELECT ino, row, bkt FROM inodes ORDER BY ino",
	[Q_PUT_INODE] = "INSERT OR REPLACE INTO inodes(ino, bkt, row) VALUES(?,?,?)",
	[Q_DEL_INODE] = "DELETE FROM inodes WHERE ino=?",
	[Q_DIRENTS_OF] = "SELECT parent, name_mac, row FROM dirents WHERE parent=? ORDER BY name_mac",
	[Q_ALL_DIRENTS] = "SELECT parent, name_mac, row FROM dirents ORDER BY parent, name_mac",
	[Q_PUT_DIRENT] = "INSERT OR REPLACE INTO dirents(parent, name_mac, row) VALUES(?,?,?)",
	[Q_DEL_DIRENT] = "DELETE FROM dirents WHERE parent=? AND name_mac=?",
	[Q_CHUNKS_OF] = "SELECT ino, idx, gen, slot, len, nonce, tag FROM chunks WHERE ino=? ORDER BY idx",
	[Q_ALL_CHUNKS] = "SELECT ino, idx, gen, slot, len, nonce, tag FROM chunks ORDER BY ino, idx",
	[Q_PUT_CHUNK] = "INSERT OR REPLACE INTO chunks(ino, idx, gen, slot, len, nonce, tag) VALUES(?,?,?,?,?,?,?)",
	[Q_DEL_CHUNK] = "DELETE FROM chunks WHERE ino=? AND idx=?",
	[Q_DEL_CHUNKS_OF] = "DELETE FROM chunks WHERE ino=?",
};

static const char schema[] =
	"CREATE TABLE volume(id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL,"
	" root BLOB NOT NULL, parent BLOB NOT NULL, state INTEGER NOT NULL);"
	"CREATE TABLE buckets(b INTEGER PRIMARY KEY, digest BLOB NOT NULL);"
	"CREATE TABLE inodes(ino INTEGER PRIMARY KEY, bkt INTEGER NOT NULL, row BLOB NOT NULL);"
	"CREATE INDEX inodes_by_bucket ON inodes(bkt);"
	"CREATE TABLE dirents(parent INTEGER NOT NULL, name_mac BLOB NOT NULL, row BLOB NOT NULL,"
	" PRIMARY KEY (parent, name_mac)) WITHOUT ROWID;"
	"CREATE TABLE chunks(ino INTEGER NOT NULL, idx INTEGER NOT NULL, gen INTEGER NOT NULL,"
	" slot INTEGER NOT NULL, len INTEGER NOT NULL, nonce BLOB NOT NULL, tag BLOB NOT NULL,"
	" PRIMARY KEY (ino, idx)) WITHOUT ROWID;"
	"CREATE TABLE gc(ino INTEGER NOT NULL, gen INTEGER NOT NULL, after INTEGER NOT NULL,"
	" PRIMARY KEY (ino, gen)) WITHOUT ROWID;";

struct fs_store {
	sqlite3 *db;
	sqlite3_stmt *q[Q_COUNT];
	int readonly;
	char why[300]; /* why we refused the file, when it was us and not SQLite */
};

/* The files SQLite keeps beside the store: each must be a plain file of the directory, never a link. */
static const char *const companions[] = { FS_META_NAME, FS_META_NAME "-wal", FS_META_NAME "-shm",
					  FS_META_NAME "-journal" };

/* After a failed call on db: -errno when it failed on this machine's limits or permissions (out of
 * descriptors, memory or space), not on the store's content; else 0. Such a failure is an I/O error for
 * the caller, never a finding about the volume. */
static int machine_error(sqlite3 *db)
{
	int se = db ? sqlite3_system_errno(db) : 0;
	return se == EMFILE || se == ENFILE || se == ENOMEM || se == EACCES || se == EPERM || se == ENOSPC ? -se : 0;
}

static int sqerr(fs_store *s, int rc)
{
	int m = (rc & 0xff) == SQLITE_CANTOPEN || (rc & 0xff) == SQLITE_IOERR ? machine_error(s ? s->db : NULL) : 0;
	if (m)
		return m;
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	default:
		return -EIO;
	}
}

const char *fs_store_errmsg(fs_store *s)
{
	if (s && s->why[0])
		return s->why;
	return s && s->db ? sqlite3_errmsg(s->db) : "cannot open the metadata store";
}

static int prepare_all(fs_store *s)
{
	for (int i = 0; i < Q_COUNT; i++) {
		int rc = sqlite3_prepare_v3(s->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->q[i], NULL);
		if (rc != SQLITE_OK)
			return sqerr(s, rc) ? sqerr(s, rc) : -EIO;
	}
	return 0;
}

static int refuse(fs_store *s, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->why, sizeof(s->why), fmt, ap);
	va_end(ap);
	return rc;
}

/* Each companion file is absent or a regular file with one name, directly in the directory. */
static int check_companions(fs_store *s, int dirfd)
{
	for (size_t i = 0; i < sizeof(companions) / sizeof(companions[0]); i++) {
		int rc = fs_beneath_check_plain(dirfd, companions[i]);
		if (rc == -ENOENT && i > 0)
			continue;
		if (rc == -ENOENT)
			return refuse(s, -ENOENT, "%s is missing", companions[i]);
		if (rc == -ELOOP || rc == -EMLINK || rc == -EINVAL)
			return refuse(s, -EBADMSG, "tamper detected: %s is %s, not the store's own file", companions[i],
				      rc == -ELOOP ? "a symbolic link" : rc == -EMLINK ? "a hard link to another name" : "not a regular file");
		if (rc)
			return refuse(s, rc, "%s: %s", companions[i], strerror(-rc)); /* e.g. a directory: 74 */
	}
	return 0;
}

/* SQLite opens by name: give it the canonical path of the directory we hold, checked to be that very
 * directory, so that no link in the path is followed (SQLITE_OPEN_NOFOLLOW refuses any). */
static int store_path(fs_store *s, int dirfd, char *out, size_t size)
{
	char proc[64], dir[PATH_MAX];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dirfd);
	ssize_t n = readlink(proc, dir, sizeof(dir) - 1);
	if (n <= 0)
		return refuse(s, -EIO, "cannot name the backing directory (is /proc mounted?): %s", strerror(errno));
	dir[n] = 0;
	struct stat a, b;
	if (dir[0] != '/' || fstat(dirfd, &a) != 0 || lstat(dir, &b) != 0 || !S_ISDIR(b.st_mode) || a.st_dev != b.st_dev ||
	    a.st_ino != b.st_ino)
		return refuse(s, -EIO, "the backing directory %s was moved or removed while in use", dir);
	if (snprintf(out, size, "%s/%s", strcmp(dir, "/") ? dir : "", FS_META_NAME) >= (int)size)
		return refuse(s, -ENAMETOOLONG, "%s: path too long", dir);
	return 0;
}

/* SQLite's own defences against a database file written by someone else. */
static int harden(fs_store *s)
{
	static const int off[] = { SQLITE_DBCONFIG_ENABLE_TRIGGER, SQLITE_DBCONFIG_ENABLE_VIEW,
				   SQLITE_DBCONFIG_TRUSTED_SCHEMA, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION };
	if (sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL) != SQLITE_OK)
		return -EIO;
	for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++)
		if (sqlite3_db_config(s->db, off[i], 0, (int *)NULL) != SQLITE_OK)
			return -EIO;
	/* The store must not be able to pull in other files; nothing it holds is larger than these. */
	sqlite3_limit(s->db, SQLITE_LIMIT_ATTACHED, 0);
	sqlite3_limit(s->db, SQLITE_LIMIT_LENGTH, FS_STORE_MAX_VALUE);
	sqlite3_limit(s->db, SQLITE_LIMIT_SQL_LENGTH, 64 * 1024);
	sqlite3_limit(s->db, SQLITE_LIMIT_COLUMN, 64);
	sqlite3_limit(s->db, SQLITE_LIMIT_EXPR_DEPTH, 64);
	sqlite3_limit(s->db, SQLITE_LIMIT_COMPOUND_SELECT, 8);
	sqlite3_limit(s->db, SQLITE_LIMIT_VDBE_OP, 100000);
	sqlite3_limit(s->db, SQLITE_LIMIT_FUNCTION_ARG, 8);
	sqlite3_limit(s->db, SQLITE_LIMIT_VARIABLE_NUMBER, 32);
	int rc = sqlite3_exec(s->db, "PRAGMA cell_size_check=ON; PRAGMA mmap_size=0; PRAGMA trusted_schema=0;", NULL,
			      NULL, NULL);
	return rc == SQLITE_OK ? 0 : -EIO;
}

/* Appends every schema row of db (type, name, table, SQL) to buf, in a fixed order, each field with its
 * length first: no text inside a field can pass for a field or a row of its own. */
static int schema_rows(sqlite3 *db, char *buf, size_t size)
{
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(db, "SELECT type, name, tbl_name, ifnull(sql, '') FROM sqlite_master ORDER BY type, name",
			       -1, &q, NULL) != SQLITE_OK)
		return machine_error(db) ? machine_error(db) : -EBADMSG;
	size_t used = 0;
	int rc;
	buf[0] = 0;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *f[4];
		int len[4];
		for (int i = 0; i < 4; i++) {
			f[i] = (const char *)sqlite3_column_text(q, i);
			len[i] = sqlite3_column_bytes(q, i);
			f[i] = f[i] ? f[i] : "";
			if ((int)strlen(f[i]) != len[i]) { /* a NUL inside: not text the format wrote */
				sqlite3_finalize(q);
				return -EINVAL;
			}
		}
		int n = snprintf(buf + used, size - used, "%d:%.*s%d:%.*s%d:%.*s%d:%.*s;", len[0], len[0], f[0], len[1],
				 len[1], f[1], len[2], len[2], f[2], len[3], len[3], f[3]);
		if (n < 0 || (size_t)n >= size - used) {
			sqlite3_finalize(q);
			return -E2BIG;
		}
		used += (size_t)n;
	}
	int m = rc == SQLITE_DONE ? 0 : machine_error(db);
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? 0 : m ? m : -EBADMSG;
}

/* The schema must be exactly the one the format defines: a planted trigger, view, table or index, or
 * an altered table, would run or change what our statements do. */
static int check_schema(fs_store *s)
{
	enum { SCHEMA_TEXT = 8192 };
	char *want = malloc(SCHEMA_TEXT), *have = malloc(SCHEMA_TEXT);
	sqlite3 *mem = NULL;
	int rc = -ENOMEM;
	if (!want || !have)
		goto out;
	rc = -EIO;
	if (sqlite3_open_v2(":memory:", &mem, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY, NULL) != SQLITE_OK ||
	    sqlite3_exec(mem, schema, NULL, NULL, NULL) != SQLITE_OK || schema_rows(mem, want, SCHEMA_TEXT) != 0)
		goto out;
	int r = schema_rows(s->db, have, SCHEMA_TEXT);
	if (r == -EBADMSG) {
		rc = refuse(s, -EBADMSG, "%s", sqlite3_errmsg(s->db)); /* SQLite's word: e.g. not a database */
	} else if (r && r != -EINVAL && r != -E2BIG) {
		rc = refuse(s, r, "%s cannot be read: %s", FS_META_NAME, strerror(-r));
	} else if (r || strcmp(want, have)) {
		rc = refuse(s, -EBADMSG, "tamper detected: the schema of %s is not the one the format defines (a planted "
					 "or altered table, index, view or trigger)", FS_META_NAME);
	} else {
		rc = 0;
	}
out:
	sqlite3_close(mem);
	free(want);
	free(have);
	return rc;
}

static int open_db(int dirfd, int flags, int readonly, fs_store **out)
{
	fs_store *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	*out = s; /* from here on, so the caller can read the message; it closes it */
	s->readonly = readonly;
	char path[PATH_MAX + 16];
	int rc = store_path(s, dirfd, path, sizeof(path));
	if (rc)
		return rc;
	if (flags & SQLITE_OPEN_CREATE) {
		/* Made by us, mode 0600, before SQLite sees it: its -wal and -shm files take the same mode. */
		int fd = fs_beneath_open(dirfd, FS_META_NAME, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return refuse(s, fd, "%s: %s", FS_META_NAME, strerror(-fd));
		close(fd);
	}
	if ((rc = check_companions(s, dirfd)) != 0)
		return rc;
	rc = sqlite3_open_v2(path, &s->db, (flags & ~SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
			     NULL);
	if (rc != SQLITE_OK) {
		int e = sqerr(s, rc);
		if ((rc & 0xff) == SQLITE_CANTOPEN)
			e = -ENOENT;
		return e ? e : -EIO;
	}
	sqlite3_extended_result_codes(s->db, 0);
	if (harden(s) != 0)
		return refuse(s, -EIO, "cannot apply the store's safety settings: %s", sqlite3_errmsg(s->db));
	/* Before anything is written through this connection. */
	if (!(flags & SQLITE_OPEN_CREATE) && (rc = check_schema(s)) != 0)
		return rc;
	sqlite3_busy_timeout(s->db, 5000);
	const char *pragmas = readonly ? "PRAGMA query_only=1;" : "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;";
	rc = sqlite3_exec(s->db, pragmas, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sqerr(s, rc) ? sqerr(s, rc) : -EIO;
	/* SQLite may have made -wal and -shm just now: they too must be its own plain files. */
	return check_companions(s, dirfd);
}

int fs_store_create(int dirfd, fs_store **out)
{
	int rc = open_db(dirfd, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 0, out);
	if (rc)
		return rc;
	rc = sqlite3_exec((*out)->db, schema, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sqerr(*out, rc) ? sqerr(*out, rc) : -EIO;
	return prepare_all(*out);
}

int fs_store_open(int dirfd, int readonly, fs_store **out)
{
	int rc = open_db(dirfd, readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE, readonly, out);
	if (rc)
		return rc;
	return prepare_all(*out);
}

void fs_store_close(fs_store *s)
{
	if (!s)
		return;
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(s->q[i]);
	sqlite3_close(s->db);
	free(s);
}

int fs_store_begin(fs_store *s)
{
	return sqerr(s, sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL));
}

int fs_store_commit(fs_store *s)
{
	int rc = sqerr(s, sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL));
	if (rc)
		fs_store_rollback(s);
	return rc;
}

void fs_store_rollback(fs_store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Runs a statement that returns no rows. */
static int run(fs_store *s, sqlite3_stmt *q)
{
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return rc == SQLITE_DONE ? 0 : (sqerr(s, rc) ? sqerr(s, rc) : -EIO);
}

static void bind_u64(sqlite3_stmt *q, int i, uint64_t v)
{
	sqlite3_bind_int64(q, i, (sqlite3_int64)v);
}

static int blob_is(sqlite3_stmt *q, int col, int len)
{
	return sqlite3_column_type(q, col) == SQLITE_BLOB && sqlite3_column_bytes(q, col) == len;
}

int fs_store_get_volume(fs_store *s, fs_volume_row *v)
{
	sqlite3_stmt *q = s->q[Q_GET_VOL];
	int rc = sqlite3_step(q), ret = 0;
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_type(q, 0) != SQLITE_INTEGER || !blob_is(q, 1, 32) || !blob_is(q, 2, 32) ||
		    sqlite3_column_type(q, 3) != SQLITE_INTEGER || sqlite3_column_int64(q, 0) < 0 ||
		    (sqlite3_column_int(q, 3) != FS_STATE_COMMITTED && sqlite3_column_int(q, 3) != FS_STATE_PREPARED)) {
			ret = -EBADMSG;
		} else {
			v->version = (uint64_t)sqlite3_column_int64(q, 0);
			memcpy(v->root, sqlite3_column_blob(q, 1), 32);
			memcpy(v->parent, sqlite3_column_blob(q, 2), 32);
			v->state = sqlite3_column_int(q, 3);
		}
	} else {
		ret = rc == SQLITE_DONE ? -ENOENT : (sqerr(s, rc) ? sqerr(s, rc) : -EIO);
	}
	sqlite3_reset(q);
	return ret;
}

int fs_store_put_volume(fs_store *s, const fs_volume_row *v)
{
	sqlite3_stmt *q = s->q[Q_PUT_VOL];
	bind_u64(q, 1, v->version);
	sqlite3_bind_blob(q, 2, v->root, 32, SQLITE_STATIC);
	sqlite3_bind_blob(q, 3, v->parent, 32, SQLITE_STATIC);
	sqlite3_bind_int(q, 4, v->state);
	return run(s, q);
}

int fs_store_set_state(fs_store *s, int state)
{
	sqlite3_stmt *q = s->q[Q_SET_STATE];
	sqlite3_bind_int(q, 1, state);
	return run(s, q);
}

int fs_store_get_buckets(fs_store *s, uint32_t n, uint8_t (*out)[32])
{
	sqlite3_stmt *q = s->q[Q_GET_BUCKETS];
	uint32_t got = 0;
	int rc, ret = 0;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (got >= n || sqlite3_column_type(q, 0) != SQLITE_INTEGER ||
		    sqlite3_column_int64(q, 0) != (sqlite3_int64)got || !blob_is(q, 1, 32)) {
			ret = -EBADMSG;
			break;
		}
		memcpy(out[got++], sqlite3_column_blob(q, 1), 32);
	}
	if (!ret && rc != SQLITE_DONE)
		ret = sqerr(s, rc) ? sqerr(s, rc) : -EIO;
	if (!ret && got != n)
		ret = -EBADMSG;
	sqlite3_reset(q);
	return ret;
}

int fs_store_put_bucket(fs_store *s, uint32_t b, const uint8_t digest[32])
{
	sqlite3_stmt *q = s->q[Q_PUT_BUCKET];
	sqlite3_bind_int64(q, 1, b);
	sqlite3_bind_blob(q, 2, digest, 32, SQLITE_STATIC);
	return run(s, q);
}

/* The end of a walk over a statement's rows: rc is SQLITE_DONE when it ended well (or the callback stopped
 * it), else the step's error. */
static int iterate_end(fs_store *s, sqlite3_stmt *q, int rc)
{
	int ret = rc == SQLITE_DONE ? 0 : sqerr(s, rc) ? sqerr(s, rc) : -EIO;
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return ret;
}

/* Iterates rows (key, k2 from a column or none, blob); stops early when cb returns nonzero. */
static int iterate(fs_store *s, sqlite3_stmt *q, int keycol, int k2col, int rowcol, int k2_int, fs_row_cb cb,
		   void *ctx)
{
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		uint64_t key = (uint64_t)sqlite3_column_int64(q, keycol);
		uint8_t k2buf[8];
		const uint8_t *k2 = NULL;
		size_t k2len = 0;
		int k2_bad = k2col >= 0 && k2_int && sqlite3_column_type(q, k2col) != SQLITE_INTEGER;
		if (k2col >= 0 && k2_int) {
			for (int i = 0; i < 8; i++)
				k2buf[i] = (uint8_t)((uint64_t)sqlite3_column_int64(q, k2col) >> (8 * i));
			k2 = k2buf;
			k2len = 8;
		} else if (k2col >= 0 && sqlite3_column_type(q, k2col) == SQLITE_BLOB) {
			k2 = sqlite3_column_blob(q, k2col);
			k2len = (size_t)sqlite3_column_bytes(q, k2col);
		}
		int ok = sqlite3_column_type(q, keycol) == SQLITE_INTEGER &&
			 sqlite3_column_type(q, rowcol) == SQLITE_BLOB &&
			 (k2col < 0 || k2_int || k2len == 32) && !k2_bad;
		const uint8_t *row = ok ? sqlite3_column_blob(q, rowcol) : NULL;
		size_t len = ok ? (size_t)sqlite3_column_bytes(q, rowcol) : 0;
		if (cb(ctx, key, k2, k2len, row, len))
			return iterate_end(s, q, SQLITE_DONE);
	}
	return iterate_end(s, q, rc);
}

int fs_store_inodes_in_bucket(fs_store *s, uint32_t b, fs_row_cb cb, void *ctx)
{
	sqlite3_stmt *q = s->q[Q_INODES_IN_BUCKET];
	sqlite3_bind_int64(q, 1, b);
	return iterate(s, q, 0, -1, 1, 0, cb, ctx);
}

int fs_store_all_inodes(fs_store *s, fs_row_cb cb, void *ctx)
{
	return iterate(s, s->q[Q_ALL_INODES], 0, 2, 1, 1, cb, ctx);
}

int fs_store_put_inode(fs_store *s, uint64_t ino, uint32_t bucket, const uint8_t *row, size_t len)
{
	sqlite3_stmt *q = s->q[Q_PUT_INODE];
	bind_u64(q, 1, ino);
	sqlite3_bind_int64(q, 2, bucket);
	sqlite3_bind_blob(q, 3, row, (int)len, SQLITE_STATIC);
	return run(s, q);
}

int fs_store_del_inode(fs_store *s, uint64_t ino)
{
	sqlite3_stmt *q = s->q[Q_DEL_INODE];
	bind_u64(q, 1, ino);
	return run(s, q);
}

int fs_store_dirents_of(fs_store *s, uint64_t parent, fs_row_cb cb, void *ctx)
{
	sqlite3_stmt *q = s->q[Q_DIRENTS_OF];
	bind_u64(q, 1, parent);
	return iterate(s, q, 0, 1, 2, 0, cb, ctx);
}

int fs_store_all_dirents(fs_store *s, fs_row_cb cb, void *ctx)
{
	return iterate(s, s->q[Q_ALL_DIRENTS], 0, 1, 2, 0, cb, ctx);
}

int fs_store_put_dirent(fs_store *s, uint64_t parent, const uint8_t mac[32], const uint8_t *row, size_t len)
{
	sqlite3_stmt *q = s->q[Q_PUT_DIRENT];
	bind_u64(q, 1, parent);
	sqlite3_bind_blob(q, 2, mac, 32, SQLITE_STATIC);
	sqlite3_bind_blob(q, 3, row, (int)len, SQLITE_STATIC);
	return run(s, q);
}

int fs_store_del_dirent(fs_store *s, uint64_t parent, const uint8_t mac[32])
{
	sqlite3_stmt *q = s->q[Q_DEL_DIRENT];
	bind_u64(q, 1, parent);
	sqlite3_bind_blob(q, 2, mac, 32, SQLITE_STATIC);
	return run(s, q);
}

static int iterate_chunks(fs_store *s, sqlite3_stmt *q, fs_chunk_cb cb, void *ctx)
{
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		fs_chunk_row c;
		memset(&c, 0, sizeof(c));
		uint64_t ino = (uint64_t)sqlite3_column_int64(q, 0);
		int bad = 0;
		for (int i = 0; i < 5; i++)
			bad |= sqlite3_column_type(q, i) != SQLITE_INTEGER;
		bad |= !blob_is(q, 5, 24) || !blob_is(q, 6, 16);
		bad |= sqlite3_column_int64(q, 1) < 0 || sqlite3_column_int64(q, 3) < 0 ||
		       sqlite3_column_int64(q, 4) < 0 || sqlite3_column_int64(q, 4) > (1 << 20);
		if (!bad) {
			c.idx = (uint64_t)sqlite3_column_int64(q, 1);
			c.cgen = (uint64_t)sqlite3_column_int64(q, 2);
			c.slot = (uint64_t)sqlite3_column_int64(q, 3);
			c.len = (uint32_t)sqlite3_column_int64(q, 4);
			memcpy(c.nonce, sqlite3_column_blob(q, 5), 24);
			memcpy(c.tag, sqlite3_column_blob(q, 6), 16);
		} else {
			c.idx = (uint64_t)sqlite3_column_int64(q, 1);
		}
		if (cb(ctx, ino, &c, bad))
			return iterate_end(s, q, SQLITE_DONE);
	}
	return iterate_end(s, q, rc);
}

int fs_store_chunks_of(fs_store *s, uint64_t ino, fs_chunk_cb cb, void *ctx)
{
	sqlite3_stmt *q = s->q[Q_CHUNKS_OF];
	bind_u64(q, 1, ino);
	return iterate_chunks(s, q, cb, ctx);
}

int fs_store_all_chunks(fs_store *s, fs_chunk_cb cb, void *ctx)
{
	return iterate_chunks(s, s->q[Q_ALL_CHUNKS], cb, ctx);
}

int fs_store_put_chunk(fs_store *s, uint64_t ino, const fs_chunk_row *c)
{
	sqlite3_stmt *q = s->q[Q_PUT_CHUNK];
	bind_u64(q, 1, ino);
	bind_u64(q, 2, c->idx);
	bind_u64(q, 3, c->cgen);
	bind_u64(q, 4, c->slot);
	sqlite3_bind_int64(q, 5, c->len);
	sqlite3_bind_blob(q, 6, c->nonce, 24, SQLITE_STATIC);
	sqlite3_bind_blob(q, 7, c->tag, 16, SQLITE_STATIC);
	return run(s, q);
}

int fs_store_del_chunk(fs_store *s, uint64_t ino, uint64_t idx)
{
	sqlite3_stmt *q = s->q[Q_DEL_CHUNK];
	bind_u64(q, 1, ino);
	bind_u64(q, 2, idx);
	return run(s, q);
}

int fs_store_del_chunks_of(fs_store *s, uint64_t ino)
{
	sqlite3_stmt *q = s->q[Q_DEL_CHUNKS_OF];
	bind_u64(q, 1, ino);
	return run(s, q);
}

int fs_store_counts(fs_store *s, uint64_t *inodes, uint64_t *chunks)
{
	static const char *const q[2] = { "SELECT count(*) FROM inodes", "SELECT count(*) FROM chunks" };
	uint64_t *out[2] = { inodes, chunks };
	for (int i = 0; i < 2; i++) {
		sqlite3_stmt *st;
		int rc = sqlite3_prepare_v2(s->db, q[i], -1, &st, NULL);
		if (rc != SQLITE_OK)
			return sqerr(s, rc) ? sqerr(s, rc) : -EIO;
		rc = sqlite3_step(st);
		*out[i] = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
		sqlite3_finalize(st);
		if (rc != SQLITE_ROW)
			return sqerr(s, rc) ? sqerr(s, rc) : -EIO;
	}
	return 0;
}

static int gc_stmt(fs_store *s, const char *sql, uint64_t a, uint64_t b, uint64_t c, int n)
{
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)a);
	if (n > 1)
		sqlite3_bind_int64(q, 2, (sqlite3_int64)b);
	if (n > 2)
		sqlite3_bind_int64(q, 3, (sqlite3_int64)c);
	int rc = sqlite3_step(q);
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? 0 : (sqerr(s, rc) ? sqerr(s, rc) : -EIO);
}

int fs_store_put_gc(fs_store *s, uint64_t ino, uint64_t gen, uint64_t after)
{
	return gc_stmt(s, "INSERT OR REPLACE INTO gc(ino, gen, after) VALUES(?,?,?)", ino, gen, after, 3);
}

int fs_store_del_gc(fs_store *s, uint64_t ino, uint64_t gen)
{
	return gc_stmt(s, "DELETE FROM gc WHERE ino=? AND gen=?", ino, gen, 0, 2);
}

int fs_store_gc_list(fs_store *s, fs_gc_cb cb, void *ctx)
{
	sqlite3_stmt *q;
	int rc = sqlite3_prepare_v2(s->db, "SELECT ino, gen, after FROM gc", -1, &q, NULL);
	if (rc != SQLITE_OK) {
		/* Volumes made before the table existed have none: nothing to do. Any other failure is one. */
		if ((rc & 0xff) == SQLITE_ERROR && strstr(sqlite3_errmsg(s->db), "no such table"))
			return 0;
		return sqerr(s, rc) ? sqerr(s, rc) : -EIO;
	}
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		if (cb(ctx, (uint64_t)sqlite3_column_int64(q, 0), (uint64_t)sqlite3_column_int64(q, 1),
		       (uint64_t)sqlite3_column_int64(q, 2)))
			break;
	sqlite3_finalize(q);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : (sqerr(s, rc) ? sqerr(s, rc) : -EIO);
}

int fs_store_del_dirents_of(fs_store *s, uint64_t parent)
{
	return gc_stmt(s, "DELETE FROM dirents WHERE parent=?", parent, 0, 0, 1);
}
