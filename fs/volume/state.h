/* The state of an open volume: one value, changed only by the functions named on each edge below.
 *
 *                     vol_mark_changed()                 vol_commit_locked(): store transaction done
 *       VOL_CLEAN ──────────────────────────▶ VOL_DIRTY ──────────────────────────────────────▶ VOL_PREPARED
 *           ▲                                     ▲                                                │    │
 *           │          anchor_and_finish(): acknowledged                                          │    │
 *           └─────────────────────────────────────┼─────────────────────────────────────────────┘    │
 *                                                 │ anchor_and_finish(): acknowledged                    │
 *                                                 │                           vol_mark_changed()         │
 *                                          VOL_PREPARED_DIRTY ◀──────────────────────────────────────────┘
 *
 *   fsv_open() starts a writable volume in VOL_CLEAN, or in VOL_PREPARED when the store holds a prepared
 *   version the anchor has not acknowledged yet (it is rolled forward there and then).
 *   VOL_READONLY: opened read-only (fsv_open, fsv_verify); nothing is ever written. Terminal.
 *   VOL_FAILED: vol_fail() from any writable state, on an integrity violation (vol_violation), an
 *   anchor that refused a commit (a fork) or a lost writer lease; the volume serves what verifies and
 *   accepts no change until it is opened again. Also from VOL_READONLY when the anchor has moved past the
 *   version served (stale, fs/volume/lease.c): then it serves nothing. Terminal; fail_status says why and
 *   fail_from what state it left. After a violation (only), a commit still writes the changes accepted
 *   before it: vol_commit_failed (salvage.c) runs one commit from fail_from and returns to VOL_FAILED.
 *
 * Invariants:
 *   1. Only VOL_DIRTY and VOL_PREPARED_DIRTY hold changes that are not in the store.
 *   2. Only VOL_PREPARED and VOL_PREPARED_DIRTY have a store version newer than the anchor's (pending_row).
 *   3. A commit that fails before the store transaction leaves the state as it was; one that fails at the
 *      anchor leaves VOL_PREPARED, retried by the next commit.
 */
#ifndef FS_VOLUME_STATE_H
#define FS_VOLUME_STATE_H

enum vol_state {
	VOL_CLEAN = 0,
	VOL_DIRTY,
	VOL_PREPARED,
	VOL_PREPARED_DIRTY,
	VOL_READONLY,
	VOL_FAILED,
};
#endif
