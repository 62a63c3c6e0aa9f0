/* The CAS server (docs/CAS.md): serves the store over mutually authenticated HTTPS until SIGINT, SIGTERM
 * or SIGHUP. Its settings come from the caller; nothing is read from the environment. */
#ifndef FS_CAS_SERVER_H
#define FS_CAS_SERVER_H
#include <stddef.h>

struct cas_server_opts {
	const char *listen;                /* HOST:PORT; port 0 takes any free port */
	const char *cert, *key, *client_ca; /* PEM files: the server's certificate and key, the clients' CA */
	const char *store;                 /* a cas_store_open spec */
	size_t max_body;                   /* largest request body */
#ifdef FS_TEST_HOOKS
	long drop_after; /* answers to state changes after this many are dropped; -1: never */
#endif
};

/* Prints "fshield cas: listening on HOST:PORT (store SPEC)" once serving; logs one line per request to
 * standard error. 0 after a signal, or -errno with a reason in err (files, store, address, TLS setup). */
int cas_server_run(const struct cas_server_opts *o, char *err, size_t errlen);
#endif
