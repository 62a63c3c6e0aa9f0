/* The CAS's parsers of bytes from the network (meta/cas/proto.h, meta/cas/session.h). The first input
 * byte picks the target, the rest is its input:
 *   0..4   cas_req_decode for operation (byte % 5): a volume request body, as the server receives it
 *   5..9   cas_ans_decode for operation (byte % 5) with status 200, 201 or 412 (second byte): an answer,
 *          as the client receives it
 *   10     cas_session_from_yaml: a session as uploaded
 *   11     cas_session_from_json: a session as stored
 *   12     cas_uri_parse (NUL-terminated at the first NUL)
 *
 * Properties checked besides "no crash, no leak":
 *  - a refusal always carries a terminated, non-empty reason;
 *  - a decoded request re-encodes to JSON that decodes to the same request (fields and values);
 *  - a decoded register request starts at version 0, a cas request moves exactly one version forward;
 *  - a parsed session keeps its bounds (1..64 volumes, 1..256 clients, 0..64 measurements, valid names
 *    and policies), and its JSON form parses back to a session with the same JSON form;
 *  - a parsed URI gives a volume name that is a valid NS/SESSION/VOLUME and an authority with a port. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/cas/proto.h"
#include "meta/cas/session.h"

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_cas: %s\n", what);
	abort();
}

static void reason_ok(const char *err, size_t size)
{
	if (!memchr(err, 0, size) || !err[0])
		fail("a refusal without a terminated reason");
}

static void check_session(const cas_session *s)
{
	if (cas_session_name_valid(s->name) != 0 || s->nvolumes < 1 || s->nvolumes > CAS_MAX_VOLUMES)
		fail("session bounds");
	for (size_t i = 0; i < s->nvolumes; i++) {
		const cas_session_volume *v = &s->volumes[i];
		if (!cas_name_valid(v->name, strlen(v->name)) || v->nclients < 1 || v->nclients > CAS_MAX_CLIENTS ||
		    v->nmeasurements > CAS_MAX_MEASUREMENTS ||
		    (v->policy != CAS_POLICY_ROLLBACK_PROTECTED && v->policy != CAS_POLICY_NO_ROLLBACK_PROTECTION))
			fail("volume bounds");
		if (cas_session_find(s, v->name) != v)
			fail("volume names not unique");
	}
	char *j = cas_session_to_json(s), err[512];
	if (!j)
		fail("to_json");
	cas_session t;
	if (cas_session_from_json(j, strlen(j), &t, err, sizeof(err)) != 0)
		fail("a session's own JSON does not parse");
	char *j2 = cas_session_to_json(&t);
	if (!j2 || strcmp(j, j2) != 0)
		fail("session JSON round trip differs");
	free(j);
	free(j2);
	cas_session_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int target = data[0];
	const char *body = (const char *)data + 1;
	size_t len = size - 1;
	char err[512];
	memset(err, 'x', sizeof(err));
	if (target < 5) {
		int op = target;
		cas_vol_req r, d;
		if (cas_req_decode(op, body, len, &r, err, sizeof(err)) != 0) {
			reason_ok(err, sizeof(err));
			return 0;
		}
		if (op == CAS_OP_REGISTER && r.next.version != 0)
			fail("register not at version 0");
		if (op == CAS_OP_CAS && r.next.version != r.expect.version + 1)
			fail("cas not one version forward");
		char *again = cas_req_encode(op, &r);
		if (!again || cas_req_decode(op, again, strlen(again), &d, err, sizeof(err)) != 0)
			fail("a decoded request does not re-encode");
		if (memcmp(r.nonce, d.nonce, sizeof(r.nonce)) || r.time != d.time ||
		    r.have_measurement != d.have_measurement ||
		    (r.have_measurement && memcmp(r.measurement, d.measurement, 32)) ||
		    (op >= CAS_OP_REGISTER && memcmp(r.volid, d.volid, 16)) || r.expect.version != d.expect.version ||
		    memcmp(r.expect.root, d.expect.root, 32) || r.next.version != d.next.version ||
		    memcmp(r.next.root, d.next.root, 32))
			fail("request round trip differs");
		free(again);
	} else if (target < 10) {
		if (len < 1)
			return 0;
		static const int statuses[] = { 200, 201, 412, 403 };
		int op = target - 5, status = statuses[(uint8_t)body[0] % 4];
		cas_vol_ans a;
		if (cas_ans_decode(op, status, body + 1, len - 1, &a, err, sizeof(err)) != 0)
			reason_ok(err, sizeof(err));
		else if (!memchr(a.error, 0, sizeof(a.error)) || !memchr(a.message, 0, sizeof(a.message)) ||
			 !memchr(a.policy, 0, sizeof(a.policy)))
			fail("unterminated answer text");
	} else if (target == 10 || target == 11) {
		cas_session s;
		int rc = target == 10 ? cas_session_from_yaml(body, len, &s, err, sizeof(err))
				      : cas_session_from_json(body, len, &s, err, sizeof(err));
		if (rc != 0) {
			reason_ok(err, sizeof(err));
			return 0;
		}
		check_session(&s);
		cas_session_free(&s);
	} else if (target == 12) {
		char *uri = strndup(body, len), auth[256], vol[512];
		if (!uri)
			return 0;
		if (cas_uri_parse(uri, auth, sizeof(auth), vol, sizeof(vol)) == 0) {
			if (cas_volume_name_valid(vol) != 0 || !strrchr(auth, ':'))
				fail("a parsed URI with an invalid volume name or no port");
		}
		free(uri);
	}
	return 0;
}
