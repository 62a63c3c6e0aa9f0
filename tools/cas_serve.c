/* fshield cas serve: the CAS server. HTTPS (libmicrohttpd over GnuTLS), TLS 1.3 only, and a client
 * certificate signed by --client-ca is required by the handshake itself: a client without one gets no
 * HTTP answer at all. Each request is carried out as one durable store transaction before it is answered.
 * The protocol is in docs/CAS.md. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto/keys.h"
#include "meta/common/status.h"
#include "meta/cas/proto.h"
#include "meta/cas/session.h"
#include "meta/cas/store.h"
#include "tools/cas.h"

struct server {
	cas_store *store;
	size_t max_body;
#ifdef FS_TEST_HOOKS
	long drop_after; /* answers to state changes after this many are dropped; -1: never */
	atomic_long changes;
#endif
	pthread_mutex_t log_mu;
};

struct req {
	char *body;
	size_t len;
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
	pthread_mutex_lock(&S->log_mu);
	fprintf(stderr, "fshield cas: %s\n", line);
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

/* Before the handshake: require a client certificate and verify it against the trust list (--client-ca)
 * inside the handshake, so that a client without a valid one fails there. */
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
	}
}

/* SHA-256 of the verified client certificate's DER; -1 if there is none (never answered). */
static int client_fp(struct MHD_Connection *c, uint8_t fp[32])
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session)
		return -1;
	gnutls_session_t s = (gnutls_session_t)ci->tls_session;
	unsigned int n = 0, status = 1;
	const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
	if (!certs || n < 1 || gnutls_certificate_verify_peers2(s, &status) != 0 || status != 0)
		return -1;
	return gnutls_hash_fast(GNUTLS_DIG_SHA256, certs[0].data, certs[0].size, fp) == 0 ? 0 : -1;
}

static enum MHD_Result answer(struct MHD_Connection *c, int status, char *json)
{
	if (!json)
		json = strdup("{\"error\":\"internal\",\"message\":\"out of memory\"}");
	if (!json)
		return MHD_NO;
	size_t len = strlen(json);
	struct MHD_Response *r = MHD_create_response_from_buffer(len, json, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(json);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result error(struct MHD_Connection *c, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static enum MHD_Result error(struct MHD_Connection *c, int status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return answer(c, status, cas_error_encode(code, msg));
}

/* ---- sessions ---- */

static enum MHD_Result session_load(struct server *S, struct MHD_Connection *c, const char *name, cas_session *sess,
				    uint8_t creator[32], int *status)
{
	char *doc = NULL, why[256];
	int rc = cas_store_session_get(S->store, name, creator, &doc);
	if (rc == -ENOENT) {
		*status = 404;
		return error(c, 404, "no-session", "no session %s", name);
	}
	if (rc) {
		*status = 500;
		return error(c, 500, "store", "store: %s", cas_store_errmsg(S->store));
	}
	rc = cas_session_from_json(doc, strlen(doc), sess, why, sizeof(why));
	free(doc);
	if (rc) {
		*status = 500;
		return error(c, 500, "store", "stored session %s is unreadable: %s", name, why);
	}
	*status = 0;
	return MHD_YES;
}

static enum MHD_Result session_put(struct server *S, struct MHD_Connection *c, const uint8_t fp[32],
				   const char *url_name, struct req *rq, int *status)
{
	cas_session sess;
	char why[512];
	if (!rq->body || rq->len == 0) {
		*status = 400;
		return error(c, 400, "bad-session", "the body must be the session as YAML");
	}
	if (cas_session_from_yaml(rq->body, rq->len, &sess, why, sizeof(why)) != 0) {
		*status = 400;
		return error(c, 400, "bad-session", "%s", why);
	}
	if (url_name && strcmp(url_name, sess.name) != 0) {
		*status = 400;
		cas_session_free(&sess);
		return error(c, 400, "bad-session", "the session is named %s, not %s", sess.name, url_name);
	}
	char *doc = cas_session_to_json(&sess);
	int rc = doc ? cas_store_session_put(S->store, sess.name, fp, doc, !url_name) : -ENOMEM;
	free(doc);
	enum MHD_Result ret;
	char fph[65];
	fs_hex(fph, fp, 32);
	switch (rc) {
	case 0: {
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string(sess.name));
		json_object_set_new(o, "creator", json_string(fph));
		json_object_set_new(o, "volumes", json_integer((json_int_t)sess.nvolumes));
		*status = url_name ? 200 : 201;
		ret = answer(c, *status, json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS));
		json_decref(o);
		break;
	}
	case -EEXIST:
		*status = 409;
		ret = error(c, 409, "exists", "session %s exists; only its creator may update it", sess.name);
		break;
	case -ENOENT:
		*status = 404;
		ret = error(c, 404, "no-session", "no session %s", sess.name);
		break;
	case -EACCES:
		*status = 403;
		ret = error(c, 403, "forbidden", "only the creator of session %s may update it", sess.name);
		break;
	default:
		*status = 500;
		ret = error(c, 500, "store", "store: %s", cas_store_errmsg(S->store));
	}
	cas_session_free(&sess);
	return ret;
}

static enum MHD_Result session_show(struct server *S, struct MHD_Connection *c, const uint8_t fp[32],
				    const char *name, int *status)
{
	char *doc = NULL;
	uint8_t creator[32];
	int rc = cas_store_session_get(S->store, name, creator, &doc);
	if (rc == -ENOENT) {
		*status = 404;
		return error(c, 404, "no-session", "no session %s", name);
	}
	if (rc) {
		*status = 500;
		return error(c, 500, "store", "store: %s", cas_store_errmsg(S->store));
	}
	if (memcmp(creator, fp, 32) != 0) {
		free(doc);
		*status = 403;
		return error(c, 403, "forbidden", "only the creator of session %s may read it", name);
	}
	json_t *o = json_object(), *sj = json_loads(doc, 0, NULL);
	free(doc);
	char fph[65];
	fs_hex(fph, creator, 32);
	json_object_set_new(o, "name", json_string(name));
	json_object_set_new(o, "creator", json_string(fph));
	json_object_set_new(o, "session", sj ? sj : json_null());
	*status = 200;
	enum MHD_Result ret = answer(c, 200, json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS));
	json_decref(o);
	return ret;
}

static enum MHD_Result audit_show(struct server *S, struct MHD_Connection *c, const uint8_t fp[32], const char *name,
				  int *status)
{
	char *doc = NULL;
	uint8_t creator[32];
	int rc = cas_store_session_get(S->store, name, creator, &doc);
	free(doc);
	if (rc == -ENOENT) {
		*status = 404;
		return error(c, 404, "no-session", "no session %s", name);
	}
	if (rc || memcmp(creator, fp, 32) != 0) {
		*status = rc ? 500 : 403;
		return rc ? error(c, 500, "store", "store: %s", cas_store_errmsg(S->store))
			  : error(c, 403, "forbidden", "only the creator of session %s may read its audit log", name);
	}
	const char *after_s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "after");
	uint64_t after = after_s ? strtoull(after_s, NULL, 10) : 0;
	char prefix[300];
	snprintf(prefix, sizeof(prefix), "%s/", name);
	cas_audit_rec *recs;
	size_t n;
	if (cas_store_audit_list(S->store, prefix, after, &recs, &n) != 0) {
		*status = 500;
		return error(c, 500, "store", "store: %s", cas_store_errmsg(S->store));
	}
	json_t *o = json_object(), *a = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_object();
		char hex[65];
		json_object_set_new(e, "seq", json_integer((json_int_t)recs[i].seq));
		json_object_set_new(e, "time", json_integer((json_int_t)recs[i].time));
		json_object_set_new(e, "volume", json_string(recs[i].volume));
		fs_hex(hex, recs[i].client, 32);
		json_object_set_new(e, "client", json_string(hex));
		json_object_set_new(e, "op", json_string(recs[i].op));
		json_object_set_new(e, "result", json_string(recs[i].result));
		if (recs[i].have_old) {
			json_object_set_new(e, "old_version", json_integer((json_int_t)recs[i].old_state.version));
			fs_hex(hex, recs[i].old_state.root, 32);
			json_object_set_new(e, "old_root", json_string(hex));
		}
		if (strcmp(recs[i].op, "key") != 0) {
			json_object_set_new(e, "new_version", json_integer((json_int_t)recs[i].new_state.version));
			fs_hex(hex, recs[i].new_state.root, 32);
			json_object_set_new(e, "new_root", json_string(hex));
		}
		json_array_append_new(a, e);
	}
	free(recs);
	json_object_set_new(o, "records", a);
	*status = 200;
	enum MHD_Result ret = answer(c, 200, json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS));
	json_decref(o);
	return ret;
}

/* ---- volumes ---- */

static enum MHD_Result volume_op(struct server *S, struct MHD_Connection *c, const uint8_t fp[32], const char *volume,
				 int op, struct req *rq, int *status, int *changed)
{
	cas_vol_req r;
	char why[256];
	*changed = 0;
	if (cas_req_decode(op, rq->body ? rq->body : "", rq->len, &r, why, sizeof(why)) != 0) {
		*status = 400;
		return error(c, 400, "bad-request", "%s", why);
	}
	int64_t now = (int64_t)time(NULL);
	if (r.time < now - CAS_TIME_WINDOW || r.time > now + CAS_TIME_WINDOW) {
		*status = 400;
		return error(c, 400, "stale", "the request's time is more than %d s away from the server's clock",
			     CAS_TIME_WINDOW);
	}
	int rc = cas_store_nonce_use(S->store, r.nonce, now);
	if (rc == -EALREADY) {
		*status = 400;
		return error(c, 400, "replay", "this request's nonce was used before: a replayed request");
	}
	if (rc) {
		*status = 500;
		return error(c, 500, "store", "store: %s", cas_store_errmsg(S->store));
	}
	/* The session and the volume's entry in it decide who may do anything with the volume. */
	char sname[300];
	snprintf(sname, sizeof(sname), "%s", volume);
	*strrchr(sname, '/') = 0;
	cas_session sess;
	uint8_t creator[32];
	enum MHD_Result ret = session_load(S, c, sname, &sess, creator, status);
	if (*status)
		return ret;
	const cas_session_volume *sv = cas_session_find(&sess, strrchr(volume, '/') + 1);
	if (!sv) {
		*status = 404;
		ret = error(c, 404, "no-volume", "session %s has no volume %s", sname, strrchr(volume, '/') + 1);
		goto out;
	}
	if (cas_session_allows(sv, fp, r.have_measurement ? r.measurement : NULL, why, sizeof(why)) != 0) {
		*status = 403;
		ret = error(c, 403, "forbidden", "%s", why);
		goto out;
	}
	cas_vol_ans a;
	memset(&a, 0, sizeof(a));
	memcpy(a.nonce, r.nonce, CAS_NONCE_BYTES);
	uint8_t kans[32];
	cas_state cur;
	switch (op) {
	case CAS_OP_INFO: {
		int exists, reg;
		rc = cas_store_volume_status(S->store, volume, &exists, &reg);
		if (rc)
			break;
		snprintf(a.policy, sizeof(a.policy), "%s", cas_policy_name(sv->policy));
		a.registered = reg;
		*status = 200;
		break;
	}
	case CAS_OP_KEY:
		rc = cas_store_volume_key(S->store, volume, fp, a.key);
		*status = 200;
		break;
	case CAS_OP_REGISTER:
		rc = cas_store_register(S->store, volume, fp, r.volid, &r.next, &cur);
		if (rc == -EEXIST) {
			*status = 409;
			ret = error(c, 409, "exists", "volume %s is registered already", volume);
			goto out;
		}
		memcpy(a.volid, r.volid, 16);
		a.state = r.next;
		*status = 201;
		*changed = !rc;
		break;
	case CAS_OP_STATE: {
		uint8_t volid[16];
		rc = cas_store_get(S->store, volume, volid, &a.state);
		if (rc == -ENOENT) {
			*status = 404;
			ret = error(c, 404, "not-registered", "volume %s is not registered", volume);
			goto out;
		}
		if (!rc && memcmp(volid, r.volid, 16) != 0) {
			*status = 409;
			ret = error(c, 409, "other-volume", "volume %s is registered for another volume id", volume);
			goto out;
		}
		memcpy(a.volid, r.volid, 16);
		*status = 200;
		break;
	}
	case CAS_OP_CAS:
		rc = cas_store_cas(S->store, volume, fp, r.volid, &r.expect, &r.next,
				   sv->policy == CAS_POLICY_ROLLBACK_PROTECTED, &a.state);
		if (rc == -ENOENT || rc == -EXDEV) {
			*status = rc == -ENOENT ? 404 : 409;
			ret = rc == -ENOENT
				      ? error(c, 404, "not-registered", "volume %s is not registered", volume)
				      : error(c, 409, "other-volume", "volume %s is registered for another volume id", volume);
			goto out;
		}
		memcpy(a.volid, r.volid, 16);
		if (rc == -ESTALE) {
			*status = CAS_HTTP_CONFLICT;
			snprintf(a.message, sizeof(a.message), "volume %s holds version %llu, not the expected %llu", volume,
				 (unsigned long long)a.state.version, (unsigned long long)r.expect.version);
			rc = 0;
		} else {
			*status = 200;
			*changed = !rc;
		}
		break;
	}
	if (rc) {
		*status = 500;
		ret = error(c, 500, "store", "store: %s", cas_store_errmsg(S->store));
		goto out;
	}
	if (op == CAS_OP_REGISTER || op == CAS_OP_STATE || op == CAS_OP_CAS) {
		if (cas_store_answer_key(S->store, volume, kans) != 0) {
			*status = 500;
			ret = error(c, 500, "store", "store: %s", cas_store_errmsg(S->store));
			goto out;
		}
		cas_answer_mac(a.mac, kans, volume, r.nonce, *status, a.volid, &a.state);
		sodium_memzero(kans, sizeof(kans));
	}
#ifdef FS_TEST_HOOKS
	/* The change is durable, but its answer never leaves (a lost reply). */
	if (*changed && S->drop_after >= 0 && atomic_fetch_add(&S->changes, 1) >= S->drop_after) {
		sodium_memzero(&a, sizeof(a));
		*status = -1;
		ret = MHD_NO;
		goto out;
	}
#endif
	ret = answer(c, *status, cas_ans_encode(op, *status, &a));
	sodium_memzero(&a, sizeof(a));
out:
	cas_session_free(&sess);
	return ret;
}

/* ---- dispatch ---- */

static enum MHD_Result route(struct server *S, struct MHD_Connection *c, const char *url, const char *method,
			     const uint8_t fp[32], struct req *rq, int *status)
{
	int changed = 0;
	int get = !strcmp(method, "GET"), post = !strcmp(method, "POST"), put = !strcmp(method, "PUT");
	if (!strcmp(url, "/v1/health")) {
		*status = get ? 200 : 405;
		return get ? answer(c, 200, strdup("{\"ok\":true}")) : error(c, 405, "method", "use GET");
	}
	if (!strcmp(url, "/v1/sessions")) {
		if (!post) {
			*status = 405;
			return error(c, 405, "method", "use POST to create a session");
		}
		return session_put(S, c, fp, NULL, rq, status);
	}
	if (!strncmp(url, "/v1/sessions/", 13)) {
		const char *name = url + 13;
		if (cas_session_name_valid(name) != 0) {
			*status = 404;
			return error(c, 404, "not-found", "no such session name");
		}
		if (get)
			return session_show(S, c, fp, name, status);
		if (put)
			return session_put(S, c, fp, name, rq, status);
		*status = 405;
		return error(c, 405, "method", "use GET or PUT");
	}
	if (!strncmp(url, "/v1/audit/", 10)) {
		const char *name = url + 10;
		if (cas_session_name_valid(name) != 0) {
			*status = 404;
			return error(c, 404, "not-found", "no such session name");
		}
		if (!get) {
			*status = 405;
			return error(c, 405, "method", "use GET");
		}
		return audit_show(S, c, fp, name, status);
	}
	if (!strncmp(url, "/v1/volumes/", 12)) {
		char vol[512];
		if (strlen(url + 12) >= sizeof(vol)) {
			*status = 404;
			return error(c, 404, "not-found", "no such volume");
		}
		strcpy(vol, url + 12);
		char *slash = strrchr(vol, '/');
		int op = slash ? cas_op_parse(slash + 1) : -1;
		if (slash)
			*slash = 0;
		if (op < 0 || cas_volume_name_valid(vol) != 0) {
			*status = 404;
			return error(c, 404, "not-found", "no such volume or operation");
		}
		if (!post) {
			*status = 405;
			return error(c, 405, "method", "use POST");
		}
		return volume_op(S, c, fp, vol, op, rq, status, &changed);
	}
	*status = 404;
	return error(c, 404, "not-found", "no such resource");
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
		if (rq->len + n > S->max_body) {
			rq->too_big = 1;
			free(rq->body);
			rq->body = NULL;
			rq->len = 0;
			return MHD_YES;
		}
		char *g = realloc(rq->body, rq->len + n + 1);
		if (!g)
			return MHD_NO;
		memcpy(g + rq->len, upload_data, n);
		rq->body = g;
		rq->len += n;
		rq->body[rq->len] = 0;
		return MHD_YES;
	}
	uint8_t fp[32];
	char fph[65];
	if (client_fp(c, fp) != 0) {
		logf_(S, "refused a connection without a verified client certificate");
		return MHD_NO;
	}
	fs_hex(fph, fp, 32);
	int status = 0;
	enum MHD_Result ret;
	if (rq->too_big) {
		status = 413;
		ret = error(c, 413, "too-large", "the body exceeds %zu bytes", S->max_body);
	} else {
		ret = route(S, c, url, method, fp, rq, &status);
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
		free(rq->body);
		free(rq);
		*con_cls = NULL;
	}
}

/* ---- main ---- */

static char *read_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	char *buf = malloc(1024 * 1024 + 1);
	size_t n = buf ? fread(buf, 1, 1024 * 1024 + 1, f) : 0;
	int bad = ferror(f);
	fclose(f);
	if (!buf || bad || n == 0 || n > 1024 * 1024) {
		snprintf(err, errlen, "%s: %s", path, !buf ? "out of memory" : bad ? "read error" : "empty or too large");
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
		snprintf(err, errlen, "--listen takes HOST:PORT, not %s", spec);
		return -1;
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
		snprintf(err, errlen, "--listen %s: %s", spec, gai_strerror(g));
		return -1;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 128) != 0) {
		snprintf(err, errlen, "--listen %s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return -1;
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

#ifdef FS_TEST_HOOKS
#define USAGE_TEST_OPTS " [--drop-replies-after N]"
#else
#define USAGE_TEST_OPTS ""
#endif
const char usage_cas_serve[] =
	"cas serve --listen HOST:PORT --tls-cert F --tls-key F --client-ca F\n"
	"          --store (sqlite:PATH | etcd://HOST:PORT[,HOST:PORT...])\n"
	"          [--max-body BYTES]" USAGE_TEST_OPTS "\n";

int cas_serve_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },	{ "tls-cert", required_argument, NULL, 'c' },
		{ "tls-key", required_argument, NULL, 'k' },	{ "client-ca", required_argument, NULL, 'a' },
		{ "store", required_argument, NULL, 's' },	{ "max-body", required_argument, NULL, 'm' },
#ifdef FS_TEST_HOOKS
		{ "drop-replies-after", required_argument, NULL, 'd' },
#endif
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *listen_spec = NULL, *cert = NULL, *key = NULL, *ca = NULL, *store = NULL;
	struct server S = { .max_body = 64 * 1024 };
#ifdef FS_TEST_HOOKS
	S.drop_after = -1;
#endif
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'l': listen_spec = optarg; break;
		case 'c': cert = optarg; break;
		case 'k': key = optarg; break;
		case 'a': ca = optarg; break;
		case 's': store = optarg; break;
		case 'm':
			S.max_body = strtoul(optarg, &end, 10);
			if (*end || S.max_body < 1024 || S.max_body > CAS_MAX_BODY) {
				fprintf(stderr, "fshield cas serve: --max-body: 1024 to %d bytes\n", CAS_MAX_BODY);
				return FS_ST_USAGE;
			}
			break;
#ifdef FS_TEST_HOOKS
		case 'd':
			S.drop_after = strtol(optarg, &end, 10);
			if (*end || S.drop_after < 0) {
				fprintf(stderr, "fshield cas serve: --drop-replies-after: a count\n");
				return FS_ST_USAGE;
			}
			break;
#endif
		case 'h': printf("usage: fshield %s", usage_cas_serve); return 0;
		default: fprintf(stderr, "usage: fshield %s", usage_cas_serve); return FS_ST_USAGE;
		}
	}
	if (optind != argc || !listen_spec || !cert || !key || !ca || !store) {
		fprintf(stderr, "usage: fshield %s", usage_cas_serve);
		return FS_ST_USAGE;
	}
	char err[512];
	char *cert_pem = read_file(cert, err, sizeof(err)), *key_pem = NULL, *ca_pem = NULL;
	if (cert_pem)
		key_pem = read_file(key, err, sizeof(err));
	if (key_pem)
		ca_pem = read_file(ca, err, sizeof(err));
	if (!ca_pem) {
		fprintf(stderr, "fshield cas serve: %s\n", err);
		free(cert_pem);
		free(key_pem);
		return FS_ST_IO;
	}
	if (cas_store_open(store, &S.store, err, sizeof(err)) != 0) {
		fprintf(stderr, "fshield cas serve: %s\n", err);
		free(cert_pem);
		free(key_pem);
		free(ca_pem);
		return FS_ST_IO;
	}
	pthread_mutex_init(&S.log_mu, NULL);
	char bound[300];
	int fd = listen_on(listen_spec, bound, sizeof(bound), err, sizeof(err));
	if (fd < 0) {
		fprintf(stderr, "fshield cas serve: %s\n", err);
		cas_store_close(S.store);
		free(cert_pem);
		free(key_pem);
		free(ca_pem);
		return FS_ST_IO;
	}
	/* Termination signals are taken by sigwait below; every server thread inherits the mask. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
			MHD_USE_ERROR_LOG,
		0, NULL, NULL, handle, &S, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, &S, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_HTTPS_MEM_KEY, key_pem,
		MHD_OPTION_HTTPS_MEM_CERT, cert_pem, MHD_OPTION_HTTPS_MEM_TRUST, ca_pem, MHD_OPTION_HTTPS_PRIORITIES,
		"NORMAL:-VERS-ALL:+VERS-TLS1.3", MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
		MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)512, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "fshield cas serve: cannot start the HTTPS server (certificate or key unusable?)\n");
		close(fd);
		cas_store_close(S.store);
		free(cert_pem);
		free(key_pem);
		free(ca_pem);
		return FS_ST_IO;
	}
	printf("fshield cas: listening on %s (store %s)\n", bound, store);
	fflush(stdout);
	int sig = 0;
	while (sigwait(&set, &sig) != 0)
		;
	logf_(&S, "stopping on %s", strsignal(sig));
	MHD_stop_daemon(d);
	close(fd);
	cas_store_close(S.store);
	sodium_memzero(key_pem, strlen(key_pem));
	free(cert_pem);
	free(key_pem);
	free(ca_pem);
	pthread_mutex_destroy(&S.log_mu);
	return 0;
}
