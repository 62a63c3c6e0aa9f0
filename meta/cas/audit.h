/* The CAS's audit log checked (docs/CAS.md, "Audit log"): the chain of meta/cas/audit_chain.h walked
 * from the first record to the head, over the store. */
#ifndef FS_CAS_AUDIT_H
#define FS_CAS_AUDIT_H
#include <stddef.h>
#include <stdint.h>

#include "meta/cas/audit_chain.h"
#include "meta/cas/store.h"

/* Walks the whole chain in the store and checks every link and the head; the records about name (a
 * volume, or a session and its volumes; "" for all) with seq > after (at most 1000) are returned in *out.
 * *broken is 0 when the chain holds, else the sequence number of the first broken link, with the reason in
 * why. The chain must reach the highest seq this process appended or saw before (cas_store.audit_high),
 * which a successful check raises to the head. 0, or -errno if the store cannot be read. */
int cas_audit_check(cas_store *s, const uint8_t key[32], const char *name, uint64_t after, cas_audit_rec **out,
		    size_t *n, uint64_t *broken, char *why, size_t whylen);
#endif
