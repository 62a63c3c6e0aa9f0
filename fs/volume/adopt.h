/* Binding a volume's current state to a new trust anchor, after the one it was bound to was lost
 * (fshield trust adopt). An operator's decision: the new anchor learns the state from the volume itself,
 * so a rollback or a fork made while no anchor watched is adopted with it (docs/THREAT-MODEL.md). */
#ifndef FS_ADOPT_H
#define FS_ADOPT_H
#include "fs/volume/volume.h"

typedef struct {
	uint8_t volid[16];
	uint8_t old_id[16], new_id[16];
	char old_uri[FS_ANCHOR_URI_MAX]; /* as recorded, or "(URI not recorded)" */
	uint64_t version;
	uint8_t root[32];
	int registered;       /* 0: the anchor held exactly this state already */
	int header_rewritten; /* the anchor id (and protection flag) in volume.hdr changed */
} fs_adopt_result;

/* Opens the volume with o's key (not mounted read-write: FS_ST_BUSY), checks that its store still holds
 * exactly (version, root) and verifies, opens o->trust_uri (a file: store is created) and registers
 * (version, root) there, then rewrites the header's anchor binding if the anchor's id differs, and
 * records the URI. Refused: an anchor without rollback protection for a protected volume, and an anchor
 * that holds another state of this volume (it is not lost). Returns an fs_status with a reason in err. */
int fsv_adopt(const fs_volume_opts *o, uint64_t version, const uint8_t root[32], fs_adopt_result *res, char *err,
	      size_t errlen);
#endif
