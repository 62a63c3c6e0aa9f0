/* The CAS server's routes (docs/CAS.md): sessions, the audit log and the volume operations. Each request
 * is carried out as one durable store transaction before it is answered. */
#include "meta/cas/routes.h"

#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/keys.h"
#include "crypto/mac.h"
#include "meta/cas/audit.h"
#include "meta/cas/proto.h"
#include "meta/cas/session.h"
#include "meta/cas/wipe.h"

static enum MHD_Result answer(struct MHD_Connection *c, int status, char *json)
{
	if (!json)
		json = strdup("{\"error\":\"internal\",\"message\":\"out of memory\"}");
	if (!json)
		return MHD_NO;
	size_t len = strlen(json);
	/* An answer to key carries the volume key: wiped when the server is done with it. */
	struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(len, json, cas_wiping_free);
	if (!r) {
		cas_wiping_free(json);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result cas_route_error(struct MHD_Connection *c, int status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return answer(c, status, cas_error_encode(code, msg));
}

/* ---- refusals ---- */

/* Audits a refusal, unless its bucket of clients had one recorded within the window: then it is counted
 * into the bucket's next record. A refused client can so add at most one record per window. */
static void audit_refusal(struct cas_routes *S, const uint8_t fp[32], const char *target, const char *what,
			  const char *code)
{
	int64_t now = (int64_t)time(NULL);
	struct cas_refusal_bucket *b = &S->refusals[(fp[0] | (unsigned)fp[1] << 8) % CAS_REFUSAL_BUCKETS];
	pthread_mutex_lock(&S->refusals_mu);
	if (b->recorded && now >= b->recorded && now - b->recorded < CAS_REFUSAL_WINDOW) {
		b->unrecorded++;
		pthread_mutex_unlock(&S->refusals_mu);
		return;
	}
	uint32_t count = 1 + b->unrecorded;
	b->recorded = now;
	b->unrecorded = 0;
	pthread_mutex_unlock(&S->refusals_mu);
	cas_audit_rec r;
	cas_audit_rec_fill(&r, target, fp, what, code, NULL, NULL);
	r.count = count;
	if (cas_store_audit_add(S->store, &r) != 0) {
		pthread_mutex_lock(&S->refusals_mu); /* not recorded: counted into the next one */
		b->recorded = 0;
		b->unrecorded += count;
		pthread_mutex_unlock(&S->refusals_mu);
	}
}

/* A refused request: audited (audit_refusal) about target, then answered as an error. */
static enum MHD_Result refuse(struct cas_routes *S, struct MHD_Connection *c, const uint8_t fp[32], const char *target,
			      const char *what, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 8, 9)));
static enum MHD_Result refuse(struct cas_routes *S, struct MHD_Connection *c, const uint8_t fp[32], const char *target,
			      const char *what, int status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	audit_refusal(S, fp, target, what, code);
	return answer(c, status, cas_error_encode(code, msg));
}

/* ---- sessions ---- */

static enum MHD_Result session_load(struct cas_routes *S, struct MHD_Connection *c, const char *name, cas_session *sess,
				    uint8_t creator[32], int *status)
{
	char *doc = NULL, why[256];
	int rc = cas_store_session_get(S->store, name, creator, &doc);
	if (rc == -ENOENT) {
		*status = 404;
		return cas_route_error(c, 404, "no-session", "no session %s", name);
	}
	if (rc) {
		*status = 500;
		return cas_route_error(c, 500, "store", "store: %s", cas_store_errmsg(S->store));
	}
	rc = cas_session_from_json(doc, strlen(doc), sess, why, sizeof(why));
	free(doc);
	if (rc) {
		*status = 500;
		return cas_route_error(c, 500, "store", "stored session %s is unreadable: %s", name, why);
	}
	*status = 0;
	return MHD_YES;
}

/* The owner of the namespace of session name is kept as the creator of a record named by the namespace
 * alone (no '/', so no session has that name). Claims the namespace for fp if it has no owner yet.
 * 0 if fp owns it (now), -EACCES with the owner in owner[] if another client does, or a store error. */
static int namespace_claim(struct cas_routes *S, const char *name, const uint8_t fp[32], uint8_t owner[32])
{
	char ns[CAS_NAME_MAX + 1], *doc = NULL;
	size_t n = (size_t)(strchr(name, '/') - name);
	memcpy(ns, name, n);
	ns[n] = 0;
	for (int tries = 0; tries < 2; tries++) {
		int rc = cas_store_session_get(S->store, ns, owner, &doc);
		free(doc);
		doc = NULL;
		if (rc == 0)
			return fs_ct_eq(owner, fp, 32) ? 0 : -EACCES;
		if (rc != -ENOENT)
			return rc;
		json_t *o = json_pack("{s:s}", "namespace", ns);
		char *d = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		rc = d ? cas_store_session_put(S->store, ns, fp, d, 1) : -ENOMEM;
		free(d);
		if (rc != -EEXIST) /* -EEXIST: another claim won the race; read who */
			return rc;
	}
	return -EIO;
}

static enum MHD_Result session_put(struct cas_routes *S, struct MHD_Connection *c, const uint8_t fp[32],
				   const char *url_name, const struct cas_body *rq, int *status)
{
	cas_session sess;
	char why[512];
	const char *target = url_name ? url_name : "";
	if (!rq->body || rq->len == 0) {
		*status = 400;
		return refuse(S, c, fp, target, "session", 400, "bad-session", "the body must be the session as YAML");
	}
	if (cas_session_from_yaml(rq->body, rq->len, &sess, why, sizeof(why)) != 0) {
		*status = 400;
		return refuse(S, c, fp, target, "session", 400, "bad-session", "%s", why);
	}
	if (url_name && strcmp(url_name, sess.name) != 0) {
		*status = 400;
		cas_session_free(&sess);
		return refuse(S, c, fp, target, "session", 400, "bad-session", "the session is named %s, not %s", sess.name,
			      url_name);
	}
	/* Sessions per client are bounded, so that one client cannot grow the store without end. */
	unsigned have = 0;
	int rc = url_name ? 0 : cas_store_session_count(S->store, fp, &have);
	if (!rc && !url_name && have >= S->max_sessions_per_client) {
		*status = 429;
		enum MHD_Result ret = refuse(S, c, fp, sess.name, "session", 429, "too-many",
					     "this client created %u sessions, the most the CAS allows one client (--max-sessions-per-client)",
					     have);
		cas_session_free(&sess);
		return ret;
	}
	/* A namespace belongs to the client that created its first session: only it creates sessions there,
	 * so nobody can take a name in another's namespace before its owner does. */
	uint8_t owner[32];
	if (!rc && !url_name)
		rc = namespace_claim(S, sess.name, fp, owner);
	if (rc == -EACCES) {
		*status = 403;
		char oh[65];
		fs_hex(oh, owner, 32);
		enum MHD_Result ret = refuse(S, c, fp, sess.name, "session", 403, "forbidden",
					     "namespace %.*s belongs to another client (%s): only its owner creates sessions in it",
					     (int)(strchr(sess.name, '/') - sess.name), sess.name, oh);
		cas_session_free(&sess);
		return ret;
	}
	char *doc = rc ? NULL : cas_session_to_json(&sess);
	rc = rc ? rc : doc ? cas_store_session_put(S->store, sess.name, fp, doc, !url_name) : -ENOMEM;
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
		ret = refuse(S, c, fp, sess.name, "session", 409, "exists", "session %s exists; only its creator may update it",
			     sess.name);
		break;
	case -ENOENT:
		*status = 404;
		ret = cas_route_error(c, 404, "no-session", "no session %s", sess.name);
		break;
	case -EACCES:
		*status = 403;
		ret = refuse(S, c, fp, sess.name, "session", 403, "forbidden", "only the creator of session %s may update it",
			     sess.name);
		break;
	default:
		*status = 500;
		ret = cas_route_error(c, 500, "store", "store: %s", cas_store_errmsg(S->store));
	}
	cas_session_free(&sess);
	return ret;
}

static enum MHD_Result session_show(struct cas_routes *S, struct MHD_Connection *c, const uint8_t fp[32],
				    const char *name, int *status)
{
	char *doc = NULL;
	uint8_t creator[32];
	int rc = cas_store_session_get(S->store, name, creator, &doc);
	if (rc == -ENOENT) {
		*status = 404;
		return cas_route_error(c, 404, "no-session", "no session %s", name);
	}
	if (rc) {
		*status = 500;
		return cas_route_error(c, 500, "store", "store: %s", cas_store_errmsg(S->store));
	}
	char fph[65];
	fs_hex(fph, creator, 32);
	if (memcmp(creator, fp, 32) != 0) {
		/* A client the session lists for a volume sees who created it (not the session itself), so that
		 * it can tell a session of its own side from one someone else set up under the name. */
		cas_session sess;
		char why[256];
		int listed = 0;
		if (cas_session_from_json(doc, strlen(doc), &sess, why, sizeof(why)) == 0) {
			for (size_t i = 0; i < sess.nvolumes && !listed; i++)
				for (size_t j = 0; j < sess.volumes[i].nclients && !listed; j++)
					listed = fs_ct_eq(sess.volumes[i].clients[j], fp, 32);
			cas_session_free(&sess);
		}
		free(doc);
		if (!listed) {
			*status = 403;
			return refuse(S, c, fp, name, "session", 403, "forbidden",
				      "only the creator of session %s, or a client it lists, may read it", name);
		}
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string(name));
		json_object_set_new(o, "creator", json_string(fph));
		*status = 200;
		enum MHD_Result ret = answer(c, 200, json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS));
		json_decref(o);
		return ret;
	}
	json_t *o = json_object(), *sj = json_loads(doc, 0, NULL);
	free(doc);
	json_object_set_new(o, "name", json_string(name));
	json_object_set_new(o, "creator", json_string(fph));
	json_object_set_new(o, "session", sj ? sj : json_null());
	*status = 200;
	enum MHD_Result ret = answer(c, 200, json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS));
	json_decref(o);
	return ret;
}

static enum MHD_Result audit_show(struct cas_routes *S, struct MHD_Connection *c, const uint8_t fp[32], const char *name,
				  int *status)
{
	char *doc = NULL;
	uint8_t creator[32];
	int rc = cas_store_session_get(S->store, name, creator, &doc);
	free(doc);
	if (rc == -ENOENT) {
		*status = 404;
		return refuse(S, c, fp, name, "audit", 404, "no-session", "no session %s", name);
	}
	if (rc || memcmp(creator, fp, 32) != 0) {
		*status = rc ? 500 : 403;
		return rc ? cas_route_error(c, 500, "store", "store: %s", cas_store_errmsg(S->store))
			  : refuse(S, c, fp, name, "audit", 403, "forbidden",
				   "only the creator of session %s may read its audit log", name);
	}
	const char *after_s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "after");
	uint64_t after = after_s ? strtoull(after_s, NULL, 10) : 0, broken;
	char why[256];
	cas_audit_rec *recs;
	size_t n;
	/* The whole chain is checked, not only this session's records: a gap anywhere is a deletion. */
	if (cas_audit_check(S->store, S->audit_key, name, after, &recs, &n, &broken, why, sizeof(why)) != 0) {
		*status = 500;
		return cas_route_error(c, 500, "store", "store: %s", cas_store_errmsg(S->store));
	}
	json_t *o = json_object(), *a = json_array(), *chain = json_object();
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
		json_object_set_new(e, "count", json_integer((json_int_t)recs[i].count));
		if (recs[i].have_old) {
			json_object_set_new(e, "old_version", json_integer((json_int_t)recs[i].old_state.version));
			fs_hex(hex, recs[i].old_state.root, 32);
			json_object_set_new(e, "old_root", json_string(hex));
		}
		if (recs[i].have_new) {
			json_object_set_new(e, "new_version", json_integer((json_int_t)recs[i].new_state.version));
			fs_hex(hex, recs[i].new_state.root, 32);
			json_object_set_new(e, "new_root", json_string(hex));
		}
		fs_hex(hex, recs[i].mac, 32);
		json_object_set_new(e, "mac", json_string(hex));
		json_array_append_new(a, e);
	}
	free(recs);
	json_object_set_new(chain, "intact", json_boolean(!broken));
	if (broken) {
		json_object_set_new(chain, "broken_at", json_integer((json_int_t)broken));
		json_object_set_new(chain, "reason", json_string(why));
	}
	json_object_set_new(o, "records", a);
	json_object_set_new(o, "chain", chain);
	*status = 200;
	enum MHD_Result ret = answer(c, 200, json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS));
	json_decref(o);
	return ret;
}

/* ---- volumes ---- */

static enum MHD_Result volume_op(struct cas_routes *S, struct MHD_Connection *c, const uint8_t fp[32], const char *volume,
				 int op, const struct cas_body *rq, int *status, int *changed)
{
	cas_vol_req r;
	char why[256];
	*changed = 0;
	const char *what = cas_op_name(op);
	if (cas_req_decode(op, rq->body ? rq->body : "", rq->len, &r, why, sizeof(why)) != 0) {
		*status = 400;
		return refuse(S, c, fp, volume, what, 400, "bad-request", "%s", why);
	}
	int64_t now = (int64_t)time(NULL);
	if (r.time < now - CAS_TIME_WINDOW || r.time > now + CAS_TIME_WINDOW) {
		*status = 400;
		return refuse(S, c, fp, volume, what, 400, "stale",
			      "the request's time is more than %d s away from the server's clock", CAS_TIME_WINDOW);
	}
	/* The session and the volume's entry in it decide who may do anything with the volume. */
	char sname[300];
	snprintf(sname, sizeof(sname), "%s", volume);
	*strrchr(sname, '/') = 0;
	cas_session sess;
	uint8_t creator[32];
	enum MHD_Result ret = session_load(S, c, sname, &sess, creator, status);
	if (*status == 404)
		audit_refusal(S, fp, volume, what, "no-session");
	if (*status)
		return ret;
	const cas_session_volume *sv = cas_session_find(&sess, strrchr(volume, '/') + 1);
	if (!sv) {
		*status = 404;
		ret = refuse(S, c, fp, volume, what, 404, "no-volume", "session %s has no volume %s", sname,
			     strrchr(volume, '/') + 1);
		goto out;
	}
	if (cas_session_allows(sv, fp, r.have_measurement ? r.measurement : NULL, why, sizeof(why)) != 0) {
		*status = 403;
		ret = refuse(S, c, fp, volume, what, 403, "forbidden", "%s", why);
		goto out;
	}
	/* Only an authorised request's nonce is recorded: a refused one adds no row, only its aggregated audit. */
	int rc = cas_store_nonce_use(S->store, r.nonce, now);
	if (rc == -EALREADY) {
		*status = 400;
		ret = refuse(S, c, fp, volume, what, 400, "replay", "this request's nonce was used before: a replayed request");
		goto out;
	}
	if (rc) {
		*status = 500;
		ret = cas_route_error(c, 500, "store", "store: %s", cas_store_errmsg(S->store));
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
		memcpy(a.creator, creator, 32);
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
			ret = cas_route_error(c, 409, "exists", "volume %s is registered already", volume);
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
			ret = cas_route_error(c, 404, "not-registered", "volume %s is not registered", volume);
			goto out;
		}
		if (!rc && memcmp(volid, r.volid, 16) != 0) {
			*status = 409;
			ret = cas_route_error(c, 409, "other-volume", "volume %s is registered for another volume id", volume);
			goto out;
		}
		memcpy(a.volid, r.volid, 16);
		*status = 200;
		break;
	}
	case CAS_OP_LEASE: {
		int64_t until = 0;
		rc = cas_store_lease(S->store, volume, r.volid, r.holder, now, r.ttl, &a.state, &until);
		if (rc == -ENOENT || rc == -EXDEV || rc == -EBUSY) {
			*status = rc == -ENOENT ? 404 : rc == -EXDEV ? 409 : CAS_HTTP_LEASED;
			ret = rc == -ENOENT ? cas_route_error(c, 404, "not-registered", "volume %s is not registered", volume)
			      : rc == -EXDEV ? cas_route_error(c, 409, "other-volume", "volume %s is registered for another volume id", volume)
					     : cas_route_error(c, CAS_HTTP_LEASED, "leased",
							       "volume %s is open read-write by another holder; its writer lease lapses in %lld s",
							       volume, (long long)(until - now));
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
				      ? cas_route_error(c, 404, "not-registered", "volume %s is not registered", volume)
				      : cas_route_error(c, 409, "other-volume", "volume %s is registered for another volume id", volume);
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
		ret = cas_route_error(c, 500, "store", "store: %s", cas_store_errmsg(S->store));
		goto out;
	}
	/* Every answer a client acts on is authenticated, info included: a proxy that terminates TLS with the
	 * server's key must not be able to change a policy, a creator or a state. */
	if (op == CAS_OP_KEY) {
		cas_answer_key(kans, a.key);
	} else if ((rc = cas_store_answer_key(S->store, volume, kans)) != 0) {
		*status = rc == -ENOENT ? 404 : 500;
		ret = rc == -ENOENT ? cas_route_error(c, 404, "no-key", "volume %s has no key yet: ask for its key first", volume)
				    : cas_route_error(c, 500, "store", "store: %s", cas_store_errmsg(S->store));
		goto out;
	}
	cas_answer_mac(a.mac, kans, volume, op, *status, &a);
	sodium_memzero(kans, sizeof(kans));
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

enum MHD_Result cas_route(struct cas_routes *S, struct MHD_Connection *c, const char *url, const char *method,
			  const uint8_t fp[32], const struct cas_body *rq, int *status)
{
	int changed = 0;
	int get = !strcmp(method, "GET"), post = !strcmp(method, "POST"), put = !strcmp(method, "PUT");
	if (!strcmp(url, "/v1/health")) {
		*status = get ? 200 : 405;
		return get ? answer(c, 200, strdup("{\"ok\":true}")) : cas_route_error(c, 405, "method", "use GET");
	}
	if (!strcmp(url, "/v1/sessions")) {
		if (!post) {
			*status = 405;
			return cas_route_error(c, 405, "method", "use POST to create a session");
		}
		return session_put(S, c, fp, NULL, rq, status);
	}
	if (!strncmp(url, "/v1/sessions/", 13)) {
		const char *name = url + 13;
		if (cas_session_name_valid(name) != 0) {
			*status = 404;
			return cas_route_error(c, 404, "not-found", "no such session name");
		}
		if (get)
			return session_show(S, c, fp, name, status);
		if (put)
			return session_put(S, c, fp, name, rq, status);
		*status = 405;
		return cas_route_error(c, 405, "method", "use GET or PUT");
	}
	if (!strncmp(url, "/v1/audit/", 10)) {
		const char *name = url + 10;
		if (cas_session_name_valid(name) != 0) {
			*status = 404;
			return cas_route_error(c, 404, "not-found", "no such session name");
		}
		if (!get) {
			*status = 405;
			return cas_route_error(c, 405, "method", "use GET");
		}
		return audit_show(S, c, fp, name, status);
	}
	if (!strncmp(url, "/v1/volumes/", 12)) {
		char vol[512];
		if (strlen(url + 12) >= sizeof(vol)) {
			*status = 404;
			return cas_route_error(c, 404, "not-found", "no such volume");
		}
		strcpy(vol, url + 12);
		char *slash = strrchr(vol, '/');
		int op = slash ? cas_op_parse(slash + 1) : -1;
		if (slash)
			*slash = 0;
		if (op < 0 || cas_volume_name_valid(vol) != 0) {
			*status = 404;
			return cas_route_error(c, 404, "not-found", "no such volume or operation");
		}
		if (!post) {
			*status = 405;
			return cas_route_error(c, 405, "method", "use POST");
		}
		return volume_op(S, c, fp, vol, op, rq, status, &changed);
	}
	*status = 404;
	return cas_route_error(c, 404, "not-found", "no such resource");
}

