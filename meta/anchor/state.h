/* The types a trust anchor deals in, apart from its calls (meta/anchor/anchor.h), so that the kinds of
 * anchor (meta/anchor/kind.h) share them without depending on the dispatcher. */
#ifndef FS_ANCHOR_STATE_H
#define FS_ANCHOR_STATE_H
#include <stdint.h>

typedef struct fs_anchor fs_anchor;

/* What an anchor keeps per volume: its latest version and root. */
typedef struct {
	uint64_t version;
	uint8_t root[32];
} fs_anchor_state;
#endif
