/* Trust anchors: the place, out of the attacker's reach, that keeps each volume's latest
 * (version, root). A volume is registered once at init and then moved forward only by compare-and-swap. */
#ifndef FS_ANCHOR_H
#define FS_ANCHOR_H
#include <stddef.h>
#include <stdint.h>

#include "meta/anchor/state.h"
#include "meta/cas/client.h"

#define FS_DEFAULT_TRUST "file:/var/lib/fshield/trust.db"


/* The URI to use: the explicit one, else FS_DEFAULT_TRUST. (The command line resolves $FSHIELD_TRUST.) */
const char *fs_anchor_default_uri(const char *explicit_uri);

/* "file:PATH" (local trust store, created on first use when create is set), "none", or
 * "cas://HOST:PORT/NAMESPACE/SESSION/VOLUME" (a CAS volume, docs/CAS.md: TLS files and time per request
 * from tls; opening asks the CAS for the volume's policy and key, so it fails when the CAS is unreachable
 * or refuses this client). Returns 0 or -errno with a one-line reason in err. */
int fs_anchor_open_tls(const char *uri, int create, const cas_tls *tls, fs_anchor **out, char *err, size_t errlen);
/* Checks uri's form without opening anything: 0, or -EINVAL with a reason (an unknown kind, a file:
 * trust store whose path is not absolute or that names a host). Commands check it with their options:
 * a usage error. */
int fs_anchor_uri_check(const char *uri, char *err, size_t errlen);
/* The same without TLS settings, for the anchors that need none (a cas:// one then fails). */
int fs_anchor_open(const char *uri, int create, fs_anchor **out, char *err, size_t errlen);
void fs_anchor_close(fs_anchor *a);
const char *fs_anchor_uri(const fs_anchor *a);
/* No rollback protection: "none", or a CAS volume under update_policy no_rollback_protection. */
int fs_anchor_is_none(const fs_anchor *a);
/* A stable identity of the trust store, recorded in the volume header at init so that a volume
 * presented to another anchor is refused. All zero for "none". For cas://: the first 16 bytes of
 * SHA-256("HOST:PORT/NAMESPACE/SESSION/VOLUME" || SHA-256 of the server certificate's public key ||
 * a PRF of the volume's answer key) (docs/CAS.md, section 4). */
void fs_anchor_id(const fs_anchor *a, uint8_t id[16]);
/* What identifies the open anchor beyond its URI, for messages (cas://: the server's key and the
 * session's creator): 0, or -1 when the URI says it all. */
int fs_anchor_describe(const fs_anchor *a, char *buf, size_t len);
/* The volume key the anchor releases (cas:// only; -ENOTSUP for the others). */
int fs_anchor_get_key(fs_anchor *a, uint8_t key[32], char *err, size_t errlen);

/* -EEXIST if the volume is registered already. */
int fs_anchor_register(fs_anchor *a, const uint8_t volid[16], const fs_anchor_state *st, char *err, size_t errlen);
/* -ENOENT if the volume is not registered there. */
int fs_anchor_get(fs_anchor *a, const uint8_t volid[16], fs_anchor_state *out, char *err, size_t errlen);
/* Writer leases (docs/THREAT-MODEL.md, "Stale copies"): a read-write open holds the volume's lease at
 * its anchor, renewed at every re-check, so that a second read-write open of the same volume (a copy of
 * its backing directory, say) is refused while the first one lives. The lease lapses FS_LEASE_SECONDS
 * after its last renewal; a file: store also frees at once a lease whose process has died on this host.
 * Takes or renews the lease of volid for holder (random, one per open) for ttl seconds, or gives it up
 * (ttl 0; a lease another holder has is left alone), and fills *cur with the anchor's state. -EBUSY
 * with who holds it in err while another holder's lease is live; -ENOENT if the volume is not
 * registered. The anchor none keeps no leases and no state: 0, *cur untouched. */
#define FS_LEASE_SECONDS 30
int fs_anchor_lease(fs_anchor *a, const uint8_t volid[16], const uint8_t holder[16], unsigned ttl, fs_anchor_state *cur,
		    char *err, size_t errlen);
/* Moves expect -> next atomically and durably. -ESTALE (with *current filled when non-NULL) if the anchor
 * does not hold expect: a second writer, a rollback or a fork. */
int fs_anchor_cas(fs_anchor *a, const uint8_t volid[16], const fs_anchor_state *expect,
		  const fs_anchor_state *next, fs_anchor_state *current, char *err, size_t errlen);
#endif
