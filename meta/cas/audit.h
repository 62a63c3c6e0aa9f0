/* The CAS's audit chain (docs/CAS.md, "Audit log"): every record carries a sequence number, its
 * predecessor's MAC and its own MAC, keyed with a key the CAS holds outside the store; the store also
 * keeps a head (the last sequence number and MAC, MACed). Whoever edits the store without the key cannot
 * delete, reorder, rewrite or insert a record, nor cut the tail behind the head, unnoticed. */
#ifndef FS_CAS_AUDIT_H
#define FS_CAS_AUDIT_H
#include <stddef.h>
#include <stdint.h>

#include "meta/cas/store.h"

/* The chain key, derived from the key file's 32 bytes (never used for anything else). */
void cas_audit_key_derive(uint8_t out[32], const uint8_t file_key[32]);
/* Reads the key file (exactly 32 bytes, not readable by others), or creates it with fresh random bytes
 * when it does not exist. 0, or -errno with a reason. */
int cas_audit_key_file(const char *path, uint8_t key[32], char *err, size_t errlen);

/* A record of one request (count 1) at the current time; old and nw may be NULL. */
void cas_audit_rec_fill(cas_audit_rec *r, const char *volume, const uint8_t client[32], const char *op,
			const char *result, const cas_state *old, const cas_state *nw);
/* Makes r the successor of (prev_seq, prev_mac): sets its seq, prev and mac. */
void cas_audit_seal(cas_audit_rec *r, const uint8_t key[32], uint64_t prev_seq, const uint8_t prev_mac[32]);
/* The MAC of the head (seq, last) that the store keeps beside the records. */
void cas_audit_head_mac(uint8_t out[32], const uint8_t key[32], uint64_t seq, const uint8_t last[32]);

/* Walks the whole chain in the store and checks every link and the head; the records about name (a
 * volume, or a session and its volumes; "" for all) with seq > after (at most 1000) are returned in *out.
 * *broken is 0 when the chain holds, else the sequence number of the first broken link, with the reason in
 * why. The chain must reach the highest seq this process appended or saw before (cas_store.audit_high),
 * which a successful check raises to the head. 0, or -errno if the store cannot be read. */
int cas_audit_check(cas_store *s, const uint8_t key[32], const char *name, uint64_t after, cas_audit_rec **out,
		    size_t *n, uint64_t *broken, char *why, size_t whylen);
#endif
