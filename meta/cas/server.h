/* The CAS server (docs/CAS.md): serves the store over mutually authenticated HTTPS until SIGINT, SIGTERM
 * or SIGHUP. Its settings come from the caller; nothing is read from the environment. */
#ifndef FS_CAS_SERVER_H
#define FS_CAS_SERVER_H
#include <stddef.h>

#define CAS_MAX_CONNECTIONS 512
#define CAS_IDLE_TIMEOUT 60 /* seconds a connection that has sent a request may stay idle */
#define CAS_DEFAULT_CONN_PER_ADDRESS 32
#define CAS_DEFAULT_HANDSHAKE_TIMEOUT 5
#define CAS_DEFAULT_SESSIONS_PER_CLIENT 64

struct cas_server_opts {
	const char *listen;                /* HOST:PORT; port 0 takes any free port */
	const char *cert, *key, *client_ca; /* PEM files: the server's certificate and key, the clients' CA */
	const char *store;                 /* a cas_store_open spec */
	const char *audit_key_file;        /* the key the audit chain is MACed under (created if absent) */
	const char *master_key_file;       /* the key every volume key is sealed under in the store */
	const char *etcd_ca, *etcd_cert, *etcd_key; /* an etcd store over TLS (meta/cas/store.h) */
	size_t max_body;                   /* largest request body */
	unsigned max_conn_per_address;     /* open connections one client address may hold */
	unsigned handshake_timeout;        /* seconds a new connection has to finish TLS and send a request */
	unsigned max_sessions_per_client;  /* sessions one client certificate may create */
#ifdef FS_TEST_HOOKS
	long drop_after; /* answers to state changes after this many are dropped; -1: never */
#endif
};

/* Prints "fshield cas: listening on HOST:PORT (store SPEC)" once serving; logs one line per request to
 * standard error. 0 after a signal, or -errno with a reason in err (files, store, address, TLS setup). */
int cas_server_run(const struct cas_server_opts *o, char *err, size_t errlen);
#endif
