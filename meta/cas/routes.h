/* The CAS server's routes: one request (URL, method, the client's verified fingerprint, its body) to
 * one answer queued on the connection. Used by the connection handling in meta/cas/server.c. */
#ifndef FS_CAS_ROUTES_H
#define FS_CAS_ROUTES_H
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "meta/cas/store.h"

/* Refusals are audited at most once per CAS_REFUSAL_WINDOW seconds per bucket of client fingerprints
 * (docs/CAS.md, "Audit log"); the ones in between are counted into the next record of the bucket. */
#define CAS_REFUSAL_BUCKETS 1024
#define CAS_REFUSAL_WINDOW 60

struct cas_refusal_bucket {
	int64_t recorded; /* time of the bucket's last record */
	uint32_t unrecorded; /* refusals since then */
};

struct cas_routes {
	cas_store *store;
	const uint8_t *audit_key;         /* the audit chain's key (meta/cas/audit.h) */
	unsigned max_sessions_per_client; /* sessions one client certificate may create */
	pthread_mutex_t refusals_mu;
	struct cas_refusal_bucket refusals[CAS_REFUSAL_BUCKETS];
#ifdef FS_TEST_HOOKS
	long drop_after; /* answers to state changes after this many are dropped; -1: never */
	atomic_long changes;
#endif
};

struct cas_body {
	char *body; /* NUL-terminated; NULL when empty */
	size_t len;
};

/* *status: the HTTP status answered, or -1 when the answer was dropped (test build only). */
enum MHD_Result cas_route(struct cas_routes *S, struct MHD_Connection *c, const char *url, const char *method,
			  const uint8_t fp[32], const struct cas_body *rq, int *status);
/* A JSON error answer {"error": code, "message": ...}. */
enum MHD_Result cas_route_error(struct MHD_Connection *c, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#endif
