/* The CAS server: HTTPS (libmicrohttpd over GnuTLS), TLS 1.3 only, and a client certificate signed by
 * the client CA is required by the handshake itself: a client without one gets no HTTP answer at all.
 * This file holds the connections, TLS, the body limit and the process's signals; the routes are in
 * meta/cas/routes.c. The protocol is in docs/CAS.md. */
#include "crypto/secret_mode.h"
#include "meta/cas/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crypto/keys.h"
#include "meta/cas/audit_chain.h"
#include "meta/cas/keyseal.h"
#include "meta/cas/routes.h"
#include "meta/cas/store.h"
#include "meta/cas/wipe.h"
#include "meta/common/reason.h"
#include "meta/common/vec.h"

struct server {
	struct cas_routes routes;
	size_t max_body;
	pthread_mutex_t log_mu;
};

struct req {
	struct cas_body b;
	size_t cap;
	int too_big;
};

static void logf_(struct server *S, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct server *S, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* Every logged byte may come from a client (URL, method, TLS errors): escape it, so that no line
	 * can forge another one or drive a terminal. */
	char esc[4 * sizeof(line) + 1];
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)line; *p; p++) {
		if (*p == '\\') {
			esc[o++] = '\\';
			esc[o++] = '\\';
		} else if (*p >= 0x20 && *p < 0x7f) {
			esc[o++] = (char)*p;
		} else {
			o += (size_t)snprintf(esc + o, sizeof(esc) - o, "\\x%02x", *p);
		}
	}
	esc[o] = 0;
	pthread_mutex_lock(&S->log_mu);
	fprintf(stderr, "fshield cas: %s\n", esc);
	fflush(stderr);
	pthread_mutex_unlock(&S->log_mu);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
	struct server *S = cls;
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = 0;
	logf_(S, "tls/http: %s", line);
}

/* Does the peer's own certificate say it is a TLS client's: an extendedKeyUsage with clientAuth? The
 * chain check alone passes a certificate without that extension, so where one CA signs the server and
 * the clients, the server's certificate could otherwise be used as a client's. */
static int peer_is_client(gnutls_session_t s)
{
	unsigned int n = 0;
	const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
	gnutls_x509_crt_t crt;
	if (!certs || n < 1 || gnutls_x509_crt_init(&crt) != 0)
		return 0;
	int ok = 0;
	if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == 0)
		for (unsigned i = 0; !ok; i++) {
			char oid[128];
			size_t len = sizeof(oid);
			if (gnutls_x509_crt_get_key_purpose_oid(crt, i, oid, &len, NULL) != 0)
				break;
			ok = !strcmp(oid, GNUTLS_KP_TLS_WWW_CLIENT);
		}
	gnutls_x509_crt_deinit(crt);
	return ok;
}

/* Runs in the handshake, beside the chain check: a certificate that is not a client's fails it. */
static int verify_client_purpose(gnutls_session_t s)
{
	return peer_is_client(s) ? 0 : GNUTLS_E_CERTIFICATE_ERROR;
}

/* Before the handshake: require a client certificate and verify it against the trust list (--client-ca)
 * and for its purpose inside the handshake, so that a client without a valid one fails there. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	(void)cls;
	(void)socket_context;
	if (code != MHD_CONNECTION_NOTIFY_STARTED)
		return;
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci && ci->tls_session) {
		gnutls_session_t s = (gnutls_session_t)ci->tls_session;
		gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
		gnutls_session_set_verify_cert(s, NULL, 0);
		gnutls_session_set_verify_function(s, verify_client_purpose);
	}
}

/* SHA-256 of the verified client certificate's DER; -1 if there is none, or it is not a client's
 * (never answered). */
static int client_fp(struct MHD_Connection *c, uint8_t fp[32])
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session)
		return -1;
	gnutls_session_t s = (gnutls_session_t)ci->tls_session;
	unsigned int n = 0, status = 1;
	const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
	if (!certs || n < 1 || gnutls_certificate_verify_peers2(s, &status) != 0 || status != 0 || !peer_is_client(s))
		return -1;
	return gnutls_hash_fast(GNUTLS_DIG_SHA256, certs[0].data, certs[0].size, fp) == 0 ? 0 : -1;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			      const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	(void)version;
	struct server *S = cls;
	struct req *rq = *con_cls;
	if (!rq) {
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		*con_cls = rq;
		/* Past the handshake and the request line: an idle connection may now stay (keep-alive). */
		MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)CAS_IDLE_TIMEOUT);
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > S->max_body)
			rq->too_big = 1;
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (rq->too_big)
			return MHD_YES;
		if (rq->b.len + n > S->max_body) {
			rq->too_big = 1;
			free(rq->b.body);
			rq->b.body = NULL;
			rq->b.len = rq->cap = 0;
			return MHD_YES;
		}
		return vec_append_bytes(&rq->b.body, &rq->b.len, &rq->cap, upload_data, n) == 0 ? MHD_YES : MHD_NO;
	}
	uint8_t fp[32];
	char fph[65];
	if (client_fp(c, fp) != 0) {
		logf_(S, "refused a connection without a verified client certificate (of --client-ca, extendedKeyUsage clientAuth)");
		return MHD_NO;
	}
	fs_hex(fph, fp, 32);
	int status = 0;
	enum MHD_Result ret;
	if (rq->too_big) {
		status = 413;
		ret = cas_route_error(c, 413, "too-large", "the body exceeds %zu bytes", S->max_body);
	} else {
		ret = cas_route(&S->routes, c, url, method, fp, &rq->b, &status);
	}
#ifdef FS_TEST_HOOKS
	if (status < 0) {
		logf_(S, "%.16s %s %s -> (answer dropped: test option --drop-replies-after)", fph, method, url);
		return ret;
	}
#endif
	logf_(S, "%.16s %s %s -> %d", fph, method, url, status);
	return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	struct req *rq = *con_cls;
	if (rq) {
		free(rq->b.body);
		free(rq);
		*con_cls = NULL;
	}
}

static char *read_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		fs_reason(err, errlen, -errno, "%s: %s", path, strerror(errno));
		return NULL;
	}
	char *buf = malloc(1024 * 1024 + 1);
	size_t n = buf ? fread(buf, 1, 1024 * 1024 + 1, f) : 0;
	int bad = ferror(f);
	fclose(f);
	if (!buf || bad || n == 0 || n > 1024 * 1024) {
		fs_reason(err, errlen, -EIO, "%s: %s", path, !buf ? "out of memory" : bad ? "read error" : "empty or too large");
		free(buf);
		return NULL;
	}
	buf[n] = 0;
	return buf;
}

/* Binds HOST:PORT (PORT 0: any free port); prints the address bound. */
static int listen_on(const char *spec, char *bound, size_t blen, char *err, size_t errlen)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof(host)) {
		return fs_reason(err, errlen, -EINVAL, "--listen takes HOST:PORT, not %s", spec);
	}
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = 0;
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = 0;
	}
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM }, *res;
	int g = getaddrinfo(host, colon + 1, &hints, &res);
	if (g) {
		return fs_reason(err, errlen, -EADDRNOTAVAIL, "--listen %s: %s", spec, gai_strerror(g));
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 128) != 0) {
		int e = -errno;
		fs_reason(err, errlen, e, "--listen %s: %s", spec, strerror(-e));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return e;
	}
	freeaddrinfo(res);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char h[INET6_ADDRSTRLEN], p[16];
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
	    getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), p, sizeof(p), NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		snprintf(bound, blen, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", h, p);
	else
		snprintf(bound, blen, "%s", spec);
	return fd;
}


int cas_server_run(const struct cas_server_opts *o, char *err, size_t errlen)
{
	cas_json_wipe_on_free(); /* before the first answer: some carry a volume key */
	struct server S = { .max_body = o->max_body };
	S.routes.max_sessions_per_client = o->max_sessions_per_client;
	pthread_mutex_init(&S.routes.refusals_mu, NULL);
#ifdef FS_TEST_HOOKS
	S.routes.drop_after = o->drop_after;
#endif
	char *cert_pem = NULL, *key_pem = NULL, *ca_pem = NULL;
	struct MHD_Daemon *d = NULL;
	uint8_t *audit_key = NULL, *master = NULL;
	int fd = -1, rc = -EIO;
	const char *why;
	if (fs_secret_mode_check_path(o->key, &why) != 0)
		return fs_reason(err, errlen, -EACCES, "TLS key %s: %s", o->key, why);
	if (!(cert_pem = read_file(o->cert, err, errlen)) || !(key_pem = read_file(o->key, err, errlen)) ||
	    !(ca_pem = read_file(o->client_ca, err, errlen)))
		goto out;
	/* The chain key lives in locked memory, outside the store, for the life of the server. */
	audit_key = sodium_malloc(64);
	if (!audit_key) {
		rc = fs_reason(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	rc = cas_audit_key_file(o->audit_key_file, audit_key + 32, err, errlen);
	if (rc)
		goto out;
	cas_audit_key_derive(audit_key, audit_key + 32);
	sodium_memzero(audit_key + 32, 32);
	S.routes.audit_key = audit_key;
	/* So is the master key: never in the store, only its check value. */
	master = fs_key_alloc();
	if (!master) {
		rc = fs_reason(err, errlen, -ENOMEM, "out of memory (or locked memory)");
		goto out;
	}
	rc = cas_master_key_file(o->master_key_file, master, err, errlen);
	if (rc)
		goto out;
	struct cas_store_conf conf = { .master = master, .etcd_ca = o->etcd_ca, .etcd_cert = o->etcd_cert,
				       .etcd_key = o->etcd_key };
	rc = cas_store_open(o->store, &conf, &S.routes.store, err, errlen);
	if (rc)
		goto out;
	cas_store_set_audit_key(S.routes.store, audit_key);
	pthread_mutex_init(&S.log_mu, NULL);
	char bound[300];
	fd = listen_on(o->listen, bound, sizeof(bound), err, errlen);
	if (fd < 0) {
		rc = fd;
		goto out;
	}
	/* Termination signals are taken by sigwait below; every server thread inherits the mask. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	d = MHD_start_daemon(
		MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
			MHD_USE_ERROR_LOG,
		0, NULL, NULL, handle, &S, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, &S, MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_HTTPS_MEM_KEY, key_pem, MHD_OPTION_HTTPS_MEM_CERT, cert_pem, MHD_OPTION_HTTPS_MEM_TRUST, ca_pem,
		MHD_OPTION_HTTPS_PRIORITIES, "NORMAL:-VERS-ALL:+VERS-TLS1.3", MHD_OPTION_NOTIFY_CONNECTION, on_connection,
		NULL, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
		/* Until its first request arrives a connection has the handshake timeout (handle() then gives it
		 * the idle timeout), and one address holds only its share of the connections. */
		MHD_OPTION_CONNECTION_TIMEOUT, o->handshake_timeout, MHD_OPTION_CONNECTION_LIMIT, (unsigned)CAS_MAX_CONNECTIONS,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, o->max_conn_per_address, MHD_OPTION_END);
	if (!d) {
		rc = fs_reason(err, errlen, -EIO, "cannot start the HTTPS server (certificate or key unusable?)");
		goto out;
	}
	printf("fshield cas: listening on %s (store %s)\n", bound, o->store);
	fflush(stdout);
	int sig = 0;
	while (sigwait(&set, &sig) != 0)
		;
	logf_(&S, "stopping on %s", strsignal(sig));
	MHD_stop_daemon(d);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (S.routes.store) {
		cas_store_close(S.routes.store);
		pthread_mutex_destroy(&S.log_mu);
	}
	sodium_free(audit_key);
	fs_key_free(master);
	pthread_mutex_destroy(&S.routes.refusals_mu);
	if (key_pem)
		sodium_memzero(key_pem, strlen(key_pem));
	free(cert_pem);
	free(key_pem);
	free(ca_pem);
	return rc;
}
