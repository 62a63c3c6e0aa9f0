/* Results of opening or verifying a volume; the fshield commands exit with these values.
 * Documented in docs/CLI.md. When several apply, the most severe (listed first in fs_status_rank) wins. */
#ifndef FS_STATUS_H
#define FS_STATUS_H

enum fs_status {
	FS_OK = 0,
	FS_ST_TAMPER = 1,        /* content or metadata changed, deleted, swapped or replayed */
	FS_ST_ROLLBACK = 2,      /* the volume is older than its trust anchor says */
	FS_ST_FORK = 3,          /* same version with another root, or a successor of another state */
	FS_ST_PENDING = 4,       /* a prepared commit that the anchor has not acknowledged (verify only) */
	FS_ST_WRONG_KEY = 5,     /* the key does not open this volume */
	FS_ST_ANCHOR = 6,        /* trust anchor missing, unreachable, or not the one this volume is bound to */
	FS_ST_BUSY = 7,          /* another writer has the volume open */
	FS_ST_USAGE = 64,        /* bad command line or options */
	FS_ST_IO = 74,           /* I/O error, bad or missing backing directory, full disk, ... */
};

static inline const char *fs_status_name(int st)
{
	switch (st) {
	case FS_OK: return "ok";
	case FS_ST_TAMPER: return "tamper";
	case FS_ST_ROLLBACK: return "rollback";
	case FS_ST_FORK: return "fork";
	case FS_ST_PENDING: return "pending";
	case FS_ST_WRONG_KEY: return "wrong-key";
	case FS_ST_ANCHOR: return "anchor";
	case FS_ST_BUSY: return "busy";
	case FS_ST_USAGE: return "usage";
	default: return "io";
	}
}

/* Severity order for combining findings: fork > rollback > tamper > wrong key > anchor > pending > ok. */
static inline int fs_status_rank(int st)
{
	switch (st) {
	case FS_ST_FORK: return 9;
	case FS_ST_ROLLBACK: return 8;
	case FS_ST_TAMPER: return 7;
	case FS_ST_WRONG_KEY: return 6;
	case FS_ST_ANCHOR: return 5;
	case FS_ST_BUSY: return 4;
	case FS_ST_IO: return 3;
	case FS_ST_PENDING: return 2;
	case FS_ST_USAGE: return 1;
	default: return 0;
	}
}
static inline int fs_status_worse(int a, int b)
{
	return fs_status_rank(b) > fs_status_rank(a) ? b : a;
}
#endif
