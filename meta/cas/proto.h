/* The CAS protocol (docs/CAS.md): names, the JSON bodies of volume requests and answers, and the answer
 * MAC, shared by the client (meta/anchor/anchor.c, tools/cas.c) and the server (meta/cas/server.c, meta/cas/routes.c).
 * Every decoder takes untrusted bytes: it accepts exactly the documented fields, each of its type and
 * size, and nothing else. */
#ifndef FS_CAS_PROTO_H
#define FS_CAS_PROTO_H
#include <stddef.h>
#include <stdint.h>

#define CAS_NAME_MAX 128        /* one name: namespace, session or volume */
#define CAS_NONCE_BYTES 32
#define CAS_FP_BYTES 32         /* SHA-256 of a certificate's DER, or of a binary (measurement) */
#define CAS_TIME_WINDOW 300     /* seconds a request's time may differ from the server's clock */
#define CAS_MAX_BODY (256 * 1024)

/* HTTP statuses with a meaning of their own in this protocol. */
#define CAS_HTTP_CONFLICT 412   /* compare-and-swap: the expected state is not the current one */
#define CAS_HTTP_LEASED 423     /* lease: another holder's writer lease is live */
#define CAS_LEASE_MAX 300       /* seconds a writer lease may be asked for */

/* Volume operations: POST /v1/volumes/NS/SESSION/VOLUME/OP */
enum cas_op { CAS_OP_INFO, CAS_OP_KEY, CAS_OP_REGISTER, CAS_OP_STATE, CAS_OP_CAS, CAS_OP_LEASE, CAS_OP_COUNT };
const char *cas_op_name(int op);
int cas_op_parse(const char *s); /* -1 if unknown */

/* One name: 1..128 of [A-Za-z0-9._-], not "." or "..". */
int cas_name_valid(const char *s, size_t len);
/* "NS/SESSION" (session) or "NS/SESSION/VOLUME" (volume): parts valid names. 0 or -1. */
int cas_session_name_valid(const char *s);
int cas_volume_name_valid(const char *s);

struct json_t;
/* 0 if every key of the JSON object o is one of allowed (NULL-terminated); else -1 with the reason
 * "unknown field 'KEY'", followed by " in WHERE" when where is not NULL. */
int cas_json_keys_only(struct json_t *o, const char *const *allowed, const char *where, char *err, size_t errlen);

/* cas://HOST:PORT/NS/SESSION/VOLUME. authority gets "HOST:PORT", volume "NS/SESSION/VOLUME".
 * Returns 0; -ENOTSUP for a cas:// URI of another form; -EINVAL for a malformed one. */
int cas_uri_parse(const char *uri, char *authority, size_t alen, char *volume, size_t vlen);

typedef struct {
	uint64_t version;
	uint8_t root[32];
} cas_state;

typedef struct {
	uint8_t nonce[CAS_NONCE_BYTES];
	int64_t time;                      /* Unix seconds at the client */
	int have_measurement;
	uint8_t measurement[CAS_FP_BYTES]; /* SHA-256 of the client's binary, as the client reports it */
	uint8_t volid[16];                 /* register, state, cas, lease */
	cas_state expect, next;            /* cas: expect -> next; register: next (version 0) */
	uint8_t holder[16];                /* lease: who holds it */
	uint32_t ttl;                      /* lease: seconds, 1..CAS_LEASE_MAX; 0 gives it up */
} cas_vol_req;

/* The request body of op as a JSON text (malloc'd), or NULL. */
char *cas_req_encode(int op, const cas_vol_req *r);
/* 0, or -1 with a reason: malformed JSON, a missing, unknown, mistyped or out-of-range field. */
int cas_req_decode(int op, const char *body, size_t len, cas_vol_req *r, char *err, size_t errlen);

typedef struct {
	uint8_t nonce[CAS_NONCE_BYTES];
	/* info */
	char policy[32];
	int registered;
	uint8_t creator[CAS_FP_BYTES];     /* the fingerprint of the client that created the session */
	/* key */
	uint8_t key[32];
	/* register, state, cas (also with the conflict status), lease */
	uint8_t volid[16];
	cas_state state;
	uint8_t mac[32];                   /* every success (and the 412 of cas): cas_answer_mac */
	/* errors */
	char error[32];
	char message[256];
} cas_vol_ans;

/* The answer body for op with HTTP status (200, 201, 412, or an error with ans->error set). */
char *cas_ans_encode(int op, int status, const cas_vol_ans *a);
int cas_ans_decode(int op, int status, const char *body, size_t len, cas_vol_ans *a, char *err, size_t errlen);
/* An error body {"error": code, "message": text}. */
char *cas_error_encode(const char *code, const char *message);

/* The key answers are MAC'd with: derived from the volume key the CAS holds (docs/CAS.md). */
void cas_answer_key(uint8_t out[32], const uint8_t volume_key[32]);
/* The MAC of a success answer (and of the 412 of cas) to op about volume with HTTP status: over the
 * operation, the volume name, a->nonce, the status and every field the answer to op carries (info: policy,
 * registered, creator; key: none besides, its key is the MAC's; the others: volume id, version, root). */
void cas_answer_mac(uint8_t out[32], const uint8_t answer_key[32], const char *volume, int op, int status,
		    const cas_vol_ans *a);

/* A fingerprint as sessions and options take it: 64 hex digits, or 32 colon-separated pairs (as
 * openssl x509 -fingerprint prints them). 0 or -1. */
int cas_fingerprint_parse(const char *s, uint8_t out[32]);
/* SHA-256 of a certificate given as PEM (first certificate in the text), or of a file's bytes. 0 or -1. */
int cas_cert_fingerprint_pem(const char *pem, size_t len, uint8_t fp[32]);
/* SHA-256 of the DER of the certificate's SubjectPublicKeyInfo: its key, the same across renewals that keep
 * the key. 0 or -1. */
int cas_cert_key_fingerprint_pem(const char *pem, size_t len, uint8_t fp[32]);
int cas_file_sha256(const char *path, uint8_t out[32]);
#endif
