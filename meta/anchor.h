/* Trust anchors: the place, out of the attacker's reach, that keeps each volume's latest
 * (version, root). A volume is registered once at init and then moved forward only by compare-and-swap. */
#ifndef FS_ANCHOR_H
#define FS_ANCHOR_H
#include <stddef.h>
#include <stdint.h>

#define FS_DEFAULT_TRUST "file:/var/lib/fshield/trust.db"

typedef struct fs_anchor fs_anchor;

typedef struct {
	uint64_t version;
	uint8_t root[32];
} fs_anchor_state;

/* The URI to use: explicit one, else $FSHIELD_TRUST, else FS_DEFAULT_TRUST. */
const char *fs_anchor_default_uri(const char *explicit_uri);

/* "file:PATH" (local trust store, created on first use when create is set) or "none".
 * Returns 0 or -errno with a one-line reason in err. */
int fs_anchor_open(const char *uri, int create, fs_anchor **out, char *err, size_t errlen);
void fs_anchor_close(fs_anchor *a);
const char *fs_anchor_uri(const fs_anchor *a);
int fs_anchor_is_none(const fs_anchor *a);
/* A stable random identity of the trust store, recorded in the volume header at init so that a volume
 * presented to another anchor is refused. All zero for "none". */
void fs_anchor_id(const fs_anchor *a, uint8_t id[16]);

/* -EEXIST if the volume is registered already. */
int fs_anchor_register(fs_anchor *a, const uint8_t volid[16], const fs_anchor_state *st, char *err, size_t errlen);
/* -ENOENT if the volume is not registered there. */
int fs_anchor_get(fs_anchor *a, const uint8_t volid[16], fs_anchor_state *out, char *err, size_t errlen);
/* Moves expect -> next atomically and durably. -ESTALE (with *current filled when non-NULL) if the anchor
 * does not hold expect: a second writer, a rollback or a fork. */
int fs_anchor_cas(fs_anchor *a, const uint8_t volid[16], const fs_anchor_state *expect,
		  const fs_anchor_state *next, fs_anchor_state *current, char *err, size_t errlen);
#endif
