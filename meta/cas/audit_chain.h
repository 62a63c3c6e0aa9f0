/* The CAS's audit chain (docs/CAS.md, "Audit log"): every record carries a sequence number, its
 * predecessor's MAC and its own MAC, keyed with a key the CAS holds outside the store; the store also
 * keeps a head (the last sequence number and MAC, MACed). Whoever edits the store without the key cannot
 * delete, reorder, rewrite or insert a record, nor cut the tail behind the head, unnoticed. The check of
 * a whole log is meta/cas/audit.h. */
#ifndef FS_CAS_AUDIT_CHAIN_H
#define FS_CAS_AUDIT_CHAIN_H
#include <stddef.h>
#include <stdint.h>

#include "meta/cas/proto.h"

typedef struct {
	uint64_t seq;
	int64_t time;
	char volume[3 * CAS_NAME_MAX + 3];
	uint8_t client[32];
	char op[16];     /* register, cas, key; or the refused request's kind (docs/CAS.md, "Audit log") */
	char result[16]; /* ok, conflict, exists; or the refusal's error code */
	uint32_t count;  /* the requests the record stands for: 1, or more for an aggregated refusal */
	int have_old, have_new;
	cas_state old_state, new_state;
	uint8_t prev[32], mac[32]; /* the chain: the predecessor's mac, and this record's */
} cas_audit_rec;

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

/* The MAC a record must carry: over a label and every field but mac. */
void cas_audit_rec_mac(uint8_t out[32], const uint8_t key[32], const cas_audit_rec *r);
#endif
