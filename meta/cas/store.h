/* The CAS's durable state (docs/CAS.md, "Store"): sessions, volumes (the key generated at first use,
 * the volume id bound at register, the latest version and root), the nonces of recent requests, and an
 * audit log of every tag update. Every call is one atomic, durable transaction: when it returns 0 its
 * effect survives a crash of the process or the machine. Calls are safe from several threads, and
 * several processes may share one store.
 *
 * Backends: "sqlite:PATH" (WAL, synchronous=FULL), and "etcd://HOST:PORT[,HOST:PORT...]" (an etcd
 * cluster through its v3 JSON gateway, meta/cas/store_etcd.c: several CAS processes may share it). The
 * operations go through a table of functions, so that a backend is added without touching the server.
 *
 * Every volume key is stored sealed under the CAS master key (meta/cas/keyseal.h), which the store never
 * holds: it keeps only a check value of it, and a store opened with another master key is refused. */
#ifndef FS_CAS_STORE_H
#define FS_CAS_STORE_H
#include <stddef.h>
#include <stdint.h>

#include "meta/cas/audit_chain.h"
#include "meta/cas/proto.h"

typedef struct cas_store cas_store;


struct cas_store_ops {
	int (*session_put)(cas_store *s, const char *name, const uint8_t creator[32], const char *doc, int create);
	int (*session_get)(cas_store *s, const char *name, uint8_t creator[32], char **doc);
	int (*volume_key)(cas_store *s, const char *volume, const uint8_t client[32], uint8_t key[32]);
	int (*vol_register)(cas_store *s, const char *volume, const uint8_t client[32], const uint8_t volid[16],
			    const cas_state *st, cas_state *cur);
	int (*vol_get)(cas_store *s, const char *volume, uint8_t volid[16], cas_state *st, int *registered,
		       uint8_t key[32]);
	int (*vol_cas)(cas_store *s, const char *volume, const uint8_t client[32], const uint8_t volid[16],
		       const cas_state *expect, const cas_state *next, int enforce, cas_state *cur);
	int (*vol_lease)(cas_store *s, const char *volume, const uint8_t volid[16], const uint8_t holder[16],
			 int64_t now, unsigned ttl, cas_state *cur, int64_t *expires);
	int (*nonce_use)(cas_store *s, const uint8_t nonce[32], int64_t now);
	int (*audit_list)(cas_store *s, const char *volume_prefix, uint64_t after, cas_audit_rec **out, size_t *n);
	int (*audit_add)(cas_store *s, const cas_audit_rec *r);
	int (*audit_head)(cas_store *s, uint64_t *seq, uint8_t last[32], uint8_t mac[32]);
	int (*session_count)(cas_store *s, const uint8_t creator[32], unsigned *n);
	/* The master check: 0 it matches (written first on a store with no volume), -EKEYREJECTED another
	 * key's, -EPROTO the store holds keys in clear (no check yet, and volumes). */
	int (*bind_master)(cas_store *s, const uint8_t check[32]);
	/* Every volume key opened under old (NULL: kept in clear) and sealed under s->master, with the new
	 * check, in one atomic change; *n volumes. -EKEYREJECTED if the store is not old's. */
	int (*rekey)(cas_store *s, const uint8_t *old, unsigned *n);
	void (*close)(cas_store *s);
};

struct cas_store {
	const struct cas_store_ops *ops;
	char errmsg[256];
	const uint8_t *master; /* the master key (the caller's locked memory) */
	uint8_t master_check[32]; /* its check value: a new key is sealed only while the store still has it */
	const uint8_t *audit_key; /* the chain key (the caller's memory); no audit record is written without */
	_Atomic uint64_t audit_high; /* the highest seq this process appended */
};

/* How a store is opened: the master key (required; the caller's memory, which must outlive the store),
 * and for etcd the TLS files (etcd_ca given: HTTPS, the cluster's certificates checked against it;
 * etcd_cert and etcd_key: the client certificate the store presents). */
struct cas_store_conf {
	const uint8_t *master;
	const char *etcd_ca, *etcd_cert, *etcd_key;
};

/* "sqlite:PATH" or "etcd://ENDPOINTS". 0 or -errno with a reason in err: -EKEYREJECTED the master key is
 * not the store's; -EPROTO the store holds volume keys in clear (fshield cas seal-store seals them). */
int cas_store_open(const char *spec, const struct cas_store_conf *conf, cas_store **out, char *err, size_t errlen);
/* The backends, opened without checking the master key. */
int cas_store_open_etcd(const char *endpoints, const struct cas_store_conf *conf, cas_store **out, char *err,
			size_t errlen);
/* Re-seals every volume key of the store under conf->master, atomically: those sealed under old, or
 * (old NULL) a store whose keys are in clear. *n: the number of volume keys. Then no copy of the old form
 * is left in the store's files (SQLite: vacuumed, its log truncated). */
int cas_store_rekey(const char *spec, const struct cas_store_conf *conf, const uint8_t *old, unsigned *n, char *err,
		    size_t errlen);
void cas_store_close(cas_store *s);
const char *cas_store_errmsg(const cas_store *s);

/* Sessions, stored as their JSON. create: -EEXIST if the name exists; update (create 0): -ENOENT if it
 * does not. The creator is fixed by the first put and never changed. */
int cas_store_session_put(cas_store *s, const char *name, const uint8_t creator[32], const char *doc, int create);
/* -ENOENT if unknown. *doc is malloc'd. */
int cas_store_session_get(cas_store *s, const char *name, uint8_t creator[32], char **doc);

/* The volume's key ("NS/SESSION/VOLUME"), generated from the system's random source at the first call
 * and the same ever after. The release is audited (op "key"). */
int cas_store_volume_key(cas_store *s, const char *volume, const uint8_t client[32], uint8_t key[32]);
/* Binds the volume to volid at version st (0): -EEXIST (cur filled) if it is registered already. */
int cas_store_register(cas_store *s, const char *volume, const uint8_t client[32], const uint8_t volid[16],
		       const cas_state *st, cas_state *cur);
/* The volume's state: -ENOENT if it is not registered. */
int cas_store_get(cas_store *s, const char *volume, uint8_t volid[16], cas_state *st);
/* Whether the volume exists (has a key) and is registered; 0 or -errno. */
int cas_store_volume_status(cas_store *s, const char *volume, int *exists, int *registered);
/* The key the server MACs its answers about the volume with (cas_answer_key of the volume key), without
 * releasing the volume key: -ENOENT if the volume has no key yet. */
int cas_store_answer_key(cas_store *s, const char *volume, uint8_t kans[32]);
/* expect -> next if the volume holds expect for volid (enforce 0: whatever it holds). -ESTALE with cur
 * filled if not; -ENOENT if not registered; -EXDEV if registered for another volume id. */
int cas_store_cas(cas_store *s, const char *volume, const uint8_t client[32], const uint8_t volid[16],
		  const cas_state *expect, const cas_state *next, int enforce, cas_state *cur);
/* The volume's writer lease (docs/CAS.md, "lease"): taken or renewed by holder until now + ttl, or given
 * up (ttl 0; another holder's lease is left alone), with the volume's state in *cur. -EBUSY (with the
 * live lease's end in *expires) if another holder's lease lasts beyond now; -ENOENT if not registered;
 * -EXDEV if registered for another volume id. */
int cas_store_lease(cas_store *s, const char *volume, const uint8_t volid[16], const uint8_t holder[16], int64_t now,
		    unsigned ttl, cas_state *cur, int64_t *expires);
/* Records a request nonce: -EALREADY if it was seen within the time window. */
int cas_store_nonce_use(cas_store *s, const uint8_t nonce[32], int64_t now);
/* Audit records of volumes whose name starts with volume_prefix, with seq > after (at most 1000), in
 * order of seq, as stored (meta/cas/audit.h checks them). */
int cas_store_audit_list(cas_store *s, const char *volume_prefix, uint64_t after, cas_audit_rec **out, size_t *n);
/* The key every audit record is chained under (meta/cas/audit.h); it must outlive the store. Until it is
 * set, every call that audits fails with -EIO. */
void cas_store_set_audit_key(cas_store *s, const uint8_t key[32]);
/* Appends one record of its own (a refusal): time, volume, client, op, result, count and states are
 * taken from r; seq and the chain are the store's. */
int cas_store_audit_add(cas_store *s, const cas_audit_rec *r);
/* The head of the chain: the last seq and its MAC, and the head's MAC; all 0 for an empty log. */
int cas_store_audit_head(cas_store *s, uint64_t *seq, uint8_t last[32], uint8_t mac[32]);
/* The number of sessions creator created. */
int cas_store_session_count(cas_store *s, const uint8_t creator[32], unsigned *n);
#endif
