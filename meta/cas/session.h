/* CAS sessions (docs/CAS.md, "Sessions"): the policy object that names volumes and says which clients,
 * and optionally which binaries, may use each. Parsed from YAML as users write them, kept as JSON. */
#ifndef FS_CAS_SESSION_H
#define FS_CAS_SESSION_H
#include <stddef.h>
#include <stdint.h>

#include "meta/cas/proto.h"

#define CAS_MAX_VOLUMES 64
#define CAS_MAX_CLIENTS 256
#define CAS_MAX_MEASUREMENTS 64

enum cas_policy { CAS_POLICY_ROLLBACK_PROTECTED = 1, CAS_POLICY_NO_ROLLBACK_PROTECTION = 2 };
const char *cas_policy_name(int p);

typedef struct {
	char name[CAS_NAME_MAX + 1];
	int policy;
	size_t nclients, nmeasurements;
	uint8_t (*clients)[32];
	uint8_t (*measurements)[32];
} cas_session_volume;

typedef struct {
	char name[2 * CAS_NAME_MAX + 2]; /* NS/SESSION */
	char version[32];                /* informational, as given */
	size_t nvolumes;
	cas_session_volume *volumes;
} cas_session;

/* From a YAML document. 0, or -1 with a one-line reason (bad YAML, unknown or missing fields, ...). */
int cas_session_from_yaml(const char *text, size_t len, cas_session *s, char *err, size_t errlen);
/* JSON (the stored and shown form) and back. */
char *cas_session_to_json(const cas_session *s);
int cas_session_from_json(const char *text, size_t len, cas_session *s, char *err, size_t errlen);
void cas_session_free(cas_session *s);

const cas_session_volume *cas_session_find(const cas_session *s, const char *volume);
/* May this client (certificate fingerprint) with this reported measurement use the volume?
 * 0, or -EACCES with the reason. measurement NULL: none reported. */
int cas_session_allows(const cas_session_volume *v, const uint8_t client[32], const uint8_t *measurement, char *err,
		       size_t errlen);
#endif
