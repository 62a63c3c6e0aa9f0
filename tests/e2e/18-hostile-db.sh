#!/usr/bin/env bash
# A metadata store written by the attacker: meta.db is an SQLite file in the backing directory, so its
# schema is the attacker's too. A planted trigger would run inside our own transactions, a view or an
# extra table or index could change what our statements read or write, an altered table definition could
# drop a constraint. fshield compares the schema with the one the format defines before it runs a single
# statement of its own, and refuses anything else as tamper: mount (read-write and read-only) exits 1
# with one clear line, verify reports it, and the planted object never runs (the store is unchanged).
# With the planted object removed again, the copy verifies clean: the check is exact, not approximate.
set -euo pipefail
. "$(dirname "$0")/lib-volume.sh"

vol_init 4096
fs_mount
head -c 9000 /dev/urandom >"$MNT/a"
echo hello >"$MNT/b"
fs_umount
run_verify clean "$BACK"
expect_vstatus 0

ERE='tamper detected: the schema of meta.db is not the one the format defines'

# hostile LABEL PLANT_SQL UNDO_SQL: plants PLANT_SQL in a copy's store, expects every open to refuse it,
# then removes it with UNDO_SQL and expects the copy to verify clean.
hostile() {
	local label=$1 plant=$2 undo=$3 d tr before
	echo "== $label"
	d=$(fresh "$label")
	tr=$(copy_trust "trust-$label")
	sqlite3 "$d/meta.db" "$plant"
	before=$(sha256sum <"$d/meta.db")
	expect_cmd 1 "$label-mount" "$FSHIELD" mount --key-file "$KEY" --trust "$tr" "$d" "$MNT"
	expect_one_line "$T/$label-mount.err" "^fshield mount: .*$ERE"
	! is_mounted "$MNT" || { soft_fail "$label: mounted"; fusermount3 -u -z "$MNT"; }
	expect_cmd 1 "$label-mount-ro" "$FSHIELD" mount -o ro --key-file "$KEY" --trust "$tr" "$d" "$MNT"
	expect_one_line "$T/$label-mount-ro.err" "^fshield mount: .*$ERE"
	! is_mounted "$MNT" || { soft_fail "$label: mounted read-only"; fusermount3 -u -z "$MNT"; }
	check "$label: the refused mounts wrote nothing to the store (meta.db unchanged, no WAL content)"
	[ "$(sha256sum <"$d/meta.db")" = "$before" ] && [ ! -s "$d/meta.db-wal" ] ||
		soft_fail "$label: the store was written: $(ls -l "$d")"
	VTRUST=$tr run_verify "$label" "$d"
	expect_vstatus 1
	expect_text "$ERE"
	expect_finding metadata - -
	sqlite3 "$d/meta.db" "$undo"
	VTRUST=$tr run_verify "$label-undone" "$d"
	expect_vstatus 0
}

hostile trigger \
	"CREATE TRIGGER wipe AFTER INSERT ON chunks BEGIN DELETE FROM chunks; END;" \
	"DROP TRIGGER wipe;"
hostile trigger-on-volume \
	"CREATE TRIGGER keep BEFORE UPDATE ON volume BEGIN SELECT RAISE(IGNORE); END;" \
	"DROP TRIGGER keep;"
hostile view \
	"CREATE VIEW everything AS SELECT * FROM inodes;" \
	"DROP VIEW everything;"
hostile extra-table \
	"CREATE TABLE extra(x BLOB);" \
	"DROP TABLE extra;"
hostile extra-index \
	"CREATE INDEX chunks_by_slot ON chunks(slot);" \
	"DROP INDEX chunks_by_slot;"
hostile altered-table \
	"PRAGMA writable_schema=ON; UPDATE sqlite_master SET sql=replace(sql, 'digest BLOB NOT NULL', 'digest BLOB') WHERE name='buckets';" \
	"PRAGMA writable_schema=ON; UPDATE sqlite_master SET sql=replace(sql, 'digest BLOB)', 'digest BLOB NOT NULL)') WHERE name='buckets';"

finish
