/* HTTPS client of the CAS (libcurl): mutual TLS 1.3, the server checked against a CA file, bounded
 * time per request. One client is used by one thread at a time. */
#ifndef FS_CAS_CLIENT_H
#define FS_CAS_CLIENT_H
#include <stddef.h>
#include <stdint.h>

typedef struct cas_client cas_client;

typedef struct {
	const char *cert, *key, *ca; /* PEM files: client certificate and its key, CA of the server */
	long timeout_ms;             /* per request, connecting included; 0: default */
	const char *creator;         /* cas:// anchors: the fingerprint the session's creator must have; NULL: any */
} cas_tls;

#define CAS_DEFAULT_TIMEOUT_MS 5000

/* -EINVAL with a reason if tls is NULL or lacks one of its files (named by the variable and the option
 * that set it on the command line). */
int cas_client_new(const char *authority, const cas_tls *tls, cas_client **out, char *err, size_t errlen);
void cas_client_free(cas_client *c);

/* One request. Returns 0 with the HTTP status and the body (malloc'd, NUL-terminated), or -ETIMEDOUT /
 * -ECONNREFUSED / -EPROTO (TLS) / -EIO with a reason: no answer. */
int cas_client_request(cas_client *c, const char *method, const char *path, const char *ctype, const char *body,
		       size_t len, long *status, char **resp, size_t *resplen, char *err, size_t errlen);
/* SHA-256 of the DER of the server certificate's public key (SubjectPublicKeyInfo), as seen on the last
 * new connection; -1 if none was seen. The server's certificate must carry extendedKeyUsage serverAuth
 * (else the handshake fails: -EPROTO). */
int cas_client_server_fp(cas_client *c, uint8_t fp[32]);
#endif
