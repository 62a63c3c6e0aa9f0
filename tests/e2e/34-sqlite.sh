#!/usr/bin/env bash
# An SQLite database inside the mount, in rollback-journal and in WAL mode, written by several
# processes at once (SQLite's own POSIX locks), intact and complete after unmount and mount.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"

cat >"$T/db.py" <<'EOF'
import hashlib, os, sqlite3, sys

def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)

def connect(path):
    db = sqlite3.connect(path, timeout=60, isolation_level=None)
    db.execute("PRAGMA busy_timeout=60000")
    return db

def create(path, mode):
    db = connect(path)
    db.execute("PRAGMA journal_mode=%s" % mode)
    db.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, writer INTEGER, n INTEGER, payload BLOB)")
    db.execute("CREATE INDEX t_w ON t(writer, n)")
    db.close()

def writer(path, w, rows):
    db = connect(path)
    for start in range(0, rows, 50):
        db.execute("BEGIN IMMEDIATE")
        for n in range(start, min(rows, start + 50)):
            db.execute("INSERT INTO t(writer, n, payload) VALUES (?, ?, ?)",
                       (w, n, hashlib.sha256(b"%d/%d" % (w, n)).digest() * 8))
        db.execute("COMMIT")
    db.execute("UPDATE t SET n = n + 1000000 WHERE writer = ? AND n % 7 = 0", (w,))
    db.execute("DELETE FROM t WHERE writer = ? AND n % 11 = 0 AND n < 1000000", (w,))
    db.close()

def expected(writers, rows):
    out = []
    for w in range(writers):
        for n in range(rows):
            if n % 7 == 0:
                out.append((w, n + 1000000))
            elif n % 11 != 0:
                out.append((w, n))
    return sorted(out)

def verify(path, writers, rows):
    db = connect(path)
    check(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "integrity_check of " + path)
    got = sorted(db.execute("SELECT writer, n FROM t").fetchall())
    check(got == expected(writers, rows), "rows of %s: %d, expected %d" % (path, len(got), len(expected(writers, rows))))
    for w, n, p in db.execute("SELECT writer, n, payload FROM t WHERE id % 97 = 0"):
        check(p == hashlib.sha256(b"%d/%d" % (w, n % 1000000)).digest() * 8, "payload of row %d/%d" % (w, n))
    db.close()

cmd = sys.argv[1]
if cmd == "run":
    path, mode, writers, rows = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    create(path, mode)
    pids = []
    for w in range(writers):
        pid = os.fork()
        if pid == 0:
            try:
                writer(path, w, rows)
                os._exit(0)
            except Exception as e:
                print("writer %d: %s" % (w, e), file=sys.stderr)
                os._exit(1)
        pids.append(pid)
    for pid in pids:
        check(os.waitpid(pid, 0)[1] == 0, "a writer failed")
    verify(path, writers, rows)
elif cmd == "verify":
    verify(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
EOF

fs_init
fs_mount
python3 "$T/db.py" run "$MNT/journal.db" delete 4 500
mkdir "$MNT/wal"
python3 "$T/db.py" run "$MNT/wal/wal.db" wal 4 500
fs_umount
fs_mount
python3 "$T/db.py" verify "$MNT/journal.db" 4 500
python3 "$T/db.py" verify "$MNT/wal/wal.db" 4 500
expect_eq wal "$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA journal_mode").fetchone()[0])' "$MNT/wal/wal.db")" "journal mode kept"
fs_umount
echo ok
