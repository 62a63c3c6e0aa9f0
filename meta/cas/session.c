/* CAS sessions: YAML (libyaml) is turned into a JSON tree (jansson) of strings, lists and mappings,
 * which one strict validator turns into a cas_session; the stored JSON goes through the same one. */
#include "meta/cas/session.h"

#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "crypto/keys.h"
#include "crypto/mac.h"
#include "meta/cas/proto.h"
#include "meta/common/reason.h"


const char *cas_policy_name(int p)
{
	return p == CAS_POLICY_ROLLBACK_PROTECTED	  ? "rollback_protected"
	       : p == CAS_POLICY_NO_ROLLBACK_PROTECTION ? "no_rollback_protection"
							  : "?";
}

void cas_session_free(cas_session *s)
{
	for (size_t i = 0; s->volumes && i < s->nvolumes; i++) {
		free(s->volumes[i].clients);
		free(s->volumes[i].measurements);
	}
	free(s->volumes);
	memset(s, 0, sizeof(*s));
}

/* ---- YAML -> JSON tree ---- */

struct conv {
	yaml_document_t *doc;
	size_t budget; /* nodes still allowed: aliases can make a small text a huge tree */
	char *err;
	size_t errlen;
};

static json_t *to_json(struct conv *c, yaml_node_t *n, int depth)
{
	char *err = c->err;
	size_t errlen = c->errlen;
	if (!n || depth > 6 || c->budget == 0) {
		fs_reason(err, errlen, -1, "%s", !n ? "empty document" : "the document is nested too deeply or too large");
		return NULL;
	}
	c->budget--;
	switch (n->type) {
	case YAML_SCALAR_NODE: {
		json_t *s = json_stringn((const char *)n->data.scalar.value, n->data.scalar.length);
		if (!s)
			fs_reason(err, errlen, -1, "line %zu: text is not valid UTF-8 or contains NUL", (size_t)n->start_mark.line + 1);
		return s;
	}
	case YAML_SEQUENCE_NODE: {
		json_t *a = json_array();
		for (yaml_node_item_t *i = n->data.sequence.items.start; a && i < n->data.sequence.items.top; i++) {
			json_t *v = to_json(c, yaml_document_get_node(c->doc, *i), depth + 1);
			if (!v || json_array_append_new(a, v) != 0) {
				json_decref(a);
				return NULL;
			}
		}
		return a;
	}
	case YAML_MAPPING_NODE: {
		json_t *o = json_object();
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start; o && p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
			if (!k || k->type != YAML_SCALAR_NODE) {
				fs_reason(err, errlen, -1, "line %zu: a mapping key must be a plain name", (size_t)n->start_mark.line + 1);
				json_decref(o);
				return NULL;
			}
			char key[80];
			snprintf(key, sizeof(key), "%.*s", (int)(k->data.scalar.length < 79 ? k->data.scalar.length : 79),
				 (const char *)k->data.scalar.value);
			if (strlen(key) != k->data.scalar.length) {
				fs_reason(err, errlen, -1, "line %zu: key too long or with NUL", (size_t)k->start_mark.line + 1);
				json_decref(o);
				return NULL;
			}
			if (json_object_get(o, key)) {
				fs_reason(err, errlen, -1, "line %zu: duplicate key '%s'", (size_t)k->start_mark.line + 1, key);
				json_decref(o);
				return NULL;
			}
			json_t *v = to_json(c, yaml_document_get_node(c->doc, p->value), depth + 1);
			if (!v || json_object_set_new(o, key, v) != 0) {
				json_decref(o);
				return NULL;
			}
		}
		return o;
	}
	default:
		fs_reason(err, errlen, -1, "empty node");
		return NULL;
	}
}

int cas_session_from_yaml(const char *text, size_t len, cas_session *s, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	yaml_parser_t p;
	yaml_document_t doc;
	if (!yaml_parser_initialize(&p))
		return fs_reason(err, errlen, -1, "out of memory");
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	if (!yaml_parser_load(&p, &doc)) {
		fs_reason(err, errlen, -1, "bad YAML: %s at line %zu column %zu", p.problem ? p.problem : "syntax error",
		    (size_t)p.problem_mark.line + 1, (size_t)p.problem_mark.column + 1);
		yaml_parser_delete(&p);
		return -1;
	}
	int rc = -1;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (!root) {
		fs_reason(err, errlen, -1, "bad YAML: the document is empty");
	} else {
		/* Exactly one document. */
		yaml_document_t more;
		if (!yaml_parser_load(&p, &more)) {
			fs_reason(err, errlen, -1, "bad YAML: %s at line %zu", p.problem ? p.problem : "syntax error",
			    (size_t)p.problem_mark.line + 1);
		} else {
			int extra = yaml_document_get_root_node(&more) != NULL;
			yaml_document_delete(&more);
			if (extra) {
				fs_reason(err, errlen, -1, "bad YAML: one document expected, found more");
			} else {
				struct conv c = { &doc, 20000, err, errlen };
				json_t *j = to_json(&c, root, 0);
				if (j) {
					char *t = json_dumps(j, JSON_COMPACT);
					rc = t ? cas_session_from_json(t, strlen(t), s, err, errlen) : fs_reason(err, errlen, -1, "out of memory");
					free(t);
					json_decref(j);
				}
			}
		}
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&p);
	return rc;
}

/* ---- validation ---- */


static int fp_list(json_t *o, const char *key, uint8_t (**out)[32], size_t *n, size_t max, int required,
		   const char *where, char *err, size_t errlen)
{
	json_t *a = json_object_get(o, key);
	*out = NULL;
	*n = 0;
	if (!a)
		return required ? fs_reason(err, errlen, -1, "%s: missing field '%s'", where, key) : 0;
	if (!json_is_array(a))
		return fs_reason(err, errlen, -1, "%s: '%s' must be a list of SHA-256 fingerprints", where, key);
	size_t cnt = json_array_size(a);
	if (cnt > max)
		return fs_reason(err, errlen, -1, "%s: at most %zu entries in '%s'", where, max, key);
	if (required && cnt == 0)
		return fs_reason(err, errlen, -1, "%s: '%s' must name at least one client", where, key);
	*out = calloc(cnt ? cnt : 1, 32);
	if (!*out)
		return fs_reason(err, errlen, -1, "out of memory");
	for (size_t i = 0; i < cnt; i++) {
		json_t *v = json_array_get(a, i);
		if (!json_is_string(v) || cas_fingerprint_parse(json_string_value(v), (*out)[i]) != 0)
			return fs_reason(err, errlen, -1, "%s: %s[%zu] is not a SHA-256 fingerprint (64 hex digits)", where, key, i);
		for (size_t j = 0; j < i; j++)
			if (!memcmp((*out)[i], (*out)[j], 32))
				return fs_reason(err, errlen, -1, "%s: %s[%zu] is listed twice", where, key, i);
	}
	*n = cnt;
	return 0;
}

static int get_str(json_t *o, const char *key, char *out, size_t outlen, int required, const char *where, char *err,
		   size_t errlen)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return required ? fs_reason(err, errlen, -1, "%s: missing field '%s'", where, key) : 0;
	if (!json_is_string(v))
		return fs_reason(err, errlen, -1, "%s: '%s' must be a text", where, key);
	if (json_string_length(v) >= outlen)
		return fs_reason(err, errlen, -1, "%s: '%s' is too long", where, key);
	strcpy(out, json_string_value(v));
	return 0;
}

int cas_session_from_json(const char *text, size_t len, cas_session *s, char *err, size_t errlen)
{
	static const char *const top_keys[] = { "name", "version", "volumes", NULL };
	static const char *const vol_keys[] = { "name", "update_policy", "clients", "measurements", NULL };
	memset(s, 0, sizeof(*s));
	json_error_t je;
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!o)
		return fs_reason(err, errlen, -1, "malformed session: %s", je.text);
	int rc = -1;
	if (!json_is_object(o)) {
		fs_reason(err, errlen, -1, "a session is a mapping with the fields name, version, volumes");
		goto out;
	}
	if (cas_json_keys_only(o, top_keys, "the session", err, errlen) ||
	    get_str(o, "name", s->name, sizeof(s->name), 1, "the session", err, errlen) ||
	    get_str(o, "version", s->version, sizeof(s->version), 0, "the session", err, errlen))
		goto out;
	if (cas_session_name_valid(s->name) != 0) {
		fs_reason(err, errlen, -1, "session name '%s' must be NAMESPACE/SESSION, each 1-128 of A-Z a-z 0-9 . _ -", s->name);
		goto out;
	}
	json_t *vols = json_object_get(o, "volumes");
	if (!vols || !json_is_array(vols) || json_array_size(vols) == 0) {
		fs_reason(err, errlen, -1, "the session: 'volumes' must be a list of at least one volume");
		goto out;
	}
	if (json_array_size(vols) > CAS_MAX_VOLUMES) {
		fs_reason(err, errlen, -1, "the session: at most %d volumes", CAS_MAX_VOLUMES);
		goto out;
	}
	s->nvolumes = json_array_size(vols);
	s->volumes = calloc(s->nvolumes, sizeof(*s->volumes));
	if (!s->volumes) {
		fs_reason(err, errlen, -1, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < s->nvolumes; i++) {
		cas_session_volume *v = &s->volumes[i];
		json_t *jv = json_array_get(vols, i);
		char where[64], pol[64] = "";
		snprintf(where, sizeof(where), "volumes[%zu]", i);
		if (!json_is_object(jv)) {
			fs_reason(err, errlen, -1, "%s must be a mapping", where);
			goto out;
		}
		if (cas_json_keys_only(jv, vol_keys, where, err, errlen) ||
		    get_str(jv, "name", v->name, sizeof(v->name), 1, where, err, errlen) ||
		    get_str(jv, "update_policy", pol, sizeof(pol), 1, where, err, errlen))
			goto out;
		if (!cas_name_valid(v->name, strlen(v->name))) {
			fs_reason(err, errlen, -1, "%s: volume name '%s' must be 1-128 of A-Z a-z 0-9 . _ -", where, v->name);
			goto out;
		}
		v->policy = !strcmp(pol, "rollback_protected")	   ? CAS_POLICY_ROLLBACK_PROTECTED
			    : !strcmp(pol, "no_rollback_protection") ? CAS_POLICY_NO_ROLLBACK_PROTECTION
								     : 0;
		if (!v->policy) {
			fs_reason(err, errlen, -1, "%s: update_policy must be rollback_protected or no_rollback_protection, not '%s'", where, pol);
			goto out;
		}
		if (fp_list(jv, "clients", &v->clients, &v->nclients, CAS_MAX_CLIENTS, 1, where, err, errlen) ||
		    fp_list(jv, "measurements", &v->measurements, &v->nmeasurements, CAS_MAX_MEASUREMENTS, 0, where, err,
			    errlen))
			goto out;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(s->volumes[j].name, v->name)) {
				fs_reason(err, errlen, -1, "%s: volume '%s' is named twice", where, v->name);
				goto out;
			}
	}
	rc = 0;
out:
	json_decref(o);
	if (rc)
		cas_session_free(s);
	return rc;
}

static json_t *fp_array(uint8_t (*fps)[32], size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++) {
		char hex[65];
		fs_hex(hex, fps[i], 32);
		json_array_append_new(a, json_string(hex));
	}
	return a;
}

char *cas_session_to_json(const cas_session *s)
{
	json_t *o = json_object(), *vols = json_array();
	if (!o || !vols) {
		json_decref(o);
		json_decref(vols);
		return NULL;
	}
	json_object_set_new(o, "name", json_string(s->name));
	if (s->version[0])
		json_object_set_new(o, "version", json_string(s->version));
	for (size_t i = 0; i < s->nvolumes; i++) {
		const cas_session_volume *v = &s->volumes[i];
		json_t *jv = json_object();
		if (!jv)
			break;
		json_object_set_new(jv, "name", json_string(v->name));
		json_object_set_new(jv, "update_policy", json_string(cas_policy_name(v->policy)));
		json_object_set_new(jv, "clients", fp_array(v->clients, v->nclients));
		if (v->nmeasurements)
			json_object_set_new(jv, "measurements", fp_array(v->measurements, v->nmeasurements));
		json_array_append_new(vols, jv);
	}
	json_object_set_new(o, "volumes", vols);
	char *t = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return t;
}

const cas_session_volume *cas_session_find(const cas_session *s, const char *volume)
{
	for (size_t i = 0; i < s->nvolumes; i++)
		if (!strcmp(s->volumes[i].name, volume))
			return &s->volumes[i];
	return NULL;
}

int cas_session_allows(const cas_session_volume *v, const uint8_t client[32], const uint8_t *measurement, char *err,
		       size_t errlen)
{
	int ok = 0;
	for (size_t i = 0; i < v->nclients; i++)
		ok |= fs_ct_eq(v->clients[i], client, 32);
	if (!ok) {
		fs_reason(err, errlen, -1, "this client certificate is not allowed to use volume %s", v->name);
		return -EACCES;
	}
	if (!v->nmeasurements)
		return 0;
	if (!measurement) {
		fs_reason(err, errlen, -1, "volume %s requires a measurement of the client binary, none was reported", v->name);
		return -EACCES;
	}
	ok = 0;
	for (size_t i = 0; i < v->nmeasurements; i++)
		ok |= fs_ct_eq(v->measurements[i], measurement, 32);
	if (!ok) {
		fs_reason(err, errlen, -1, "the reported measurement of the client binary is not one volume %s allows", v->name);
		return -EACCES;
	}
	return 0;
}
