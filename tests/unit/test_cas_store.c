/* The CAS's store (meta/cas/store.c), sessions (meta/cas/session.c) and protocol bodies
 * (meta/cas/proto.c): register, get, compare-and-swap and its races across handles and threads, the
 * key generated once, session ownership and access rules, the audit log, nonce replay, and strict
 * decoding of YAML and JSON. */
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/keys.h"
#include "meta/cas/audit.h"
#include "meta/cas/keyseal.h"
#include "meta/cas/proto.h"
#include "meta/cas/session.h"
#include "meta/cas/store.h"
#include "testutil.h"

static char spec[512];
static const uint8_t audit_key[32] = { 0xa0, 0xd1, 0x7 };
static const uint8_t master_key[32] = { 0x3a, 0x57, 0xe2 }, other_master[32] = { 0x3a, 0x57, 0xe3 };
static const struct cas_store_conf conf = { .master = master_key };

/* A new store file per test (tests may run in forked children: the name is random, not counted). */
static cas_store *new_store(void)
{
	snprintf(spec, sizeof(spec), "sqlite:%s/cas-%08x.db", test_scratch_base, randombytes_random());
	cas_store *s = NULL;
	char err[256] = "";
	int rc = cas_store_open(spec, &conf, &s, err, sizeof(err));
	ck_assert_msg(rc == 0, "open %s: %d %s", spec, rc, err);
	cas_store_set_audit_key(s, audit_key);
	return s;
}

static cas_store *reopen(void)
{
	cas_store *s = NULL;
	char err[256] = "";
	ck_assert_int_eq(cas_store_open(spec, &conf, &s, err, sizeof(err)), 0);
	cas_store_set_audit_key(s, audit_key);
	return s;
}

static void rnd_state(cas_state *s, uint64_t v)
{
	s->version = v;
	randombytes_buf(s->root, 32);
}

static void state_eq(const cas_state *a, const cas_state *b)
{
	ck_assert_uint_eq(a->version, b->version);
	ck_assert_mem_eq(a->root, b->root, 32);
}

static const uint8_t client_a[32] = { 0xaa }, client_b[32] = { 0xbb };

START_TEST(register_get_cas)
{
	cas_store *s = new_store();
	uint8_t volid[16], got_id[16];
	randombytes_buf(volid, 16);
	cas_state v0, v1, v2, got, cur;
	rnd_state(&v0, 0);
	rnd_state(&v1, 1);
	rnd_state(&v2, 2);
	ck_assert_int_eq(cas_store_get(s, "ns/s/v", got_id, &got), -ENOENT);
	ck_assert_int_eq(cas_store_register(s, "ns/s/v", client_a, volid, &v0, &cur), 0);
	ck_assert_int_eq(cas_store_get(s, "ns/s/v", got_id, &got), 0);
	state_eq(&got, &v0);
	ck_assert_mem_eq(got_id, volid, 16);
	/* register again: refused, whatever the volume id */
	ck_assert_int_eq(cas_store_register(s, "ns/s/v", client_a, volid, &v0, &cur), -EEXIST);
	state_eq(&cur, &v0);
	ck_assert_int_eq(cas_store_cas(s, "ns/s/v", client_a, volid, &v0, &v1, 1, &cur), 0);
	state_eq(&cur, &v1);
	/* a stale expectation: refused, current state returned */
	ck_assert_int_eq(cas_store_cas(s, "ns/s/v", client_a, volid, &v0, &v2, 1, &cur), -ESTALE);
	state_eq(&cur, &v1);
	/* the right version with another root is stale as well */
	cas_state fake = v1;
	fake.root[0] ^= 1;
	ck_assert_int_eq(cas_store_cas(s, "ns/s/v", client_a, volid, &fake, &v2, 1, &cur), -ESTALE);
	/* another volume id under that name */
	uint8_t other[16];
	memcpy(other, volid, 16);
	other[15] ^= 1;
	ck_assert_int_eq(cas_store_cas(s, "ns/s/v", client_a, other, &v1, &v2, 1, &cur), -EXDEV);
	ck_assert_int_eq(cas_store_cas(s, "ns/s/none", client_a, volid, &v1, &v2, 1, &cur), -ENOENT);
	ck_assert_int_eq(cas_store_cas(s, "ns/s/v", client_a, volid, &v1, &v2, 1, &cur), 0);
	/* durable: another handle sees it */
	cas_store_close(s);
	s = reopen();
	ck_assert_int_eq(cas_store_get(s, "ns/s/v", got_id, &got), 0);
	state_eq(&got, &v2);
	/* without enforcement (no_rollback_protection) any successor is taken */
	cas_state v9;
	rnd_state(&v9, 9);
	ck_assert_int_eq(cas_store_cas(s, "ns/s/v", client_a, volid, &v0, &v9, 0, &cur), 0);
	ck_assert_int_eq(cas_store_get(s, "ns/s/v", got_id, &got), 0);
	state_eq(&got, &v9);
	cas_store_close(s);
}
END_TEST

START_TEST(key_generated_once)
{
	cas_store *s = new_store();
	uint8_t k1[32], k2[32], k3[32], zero[32] = { 0 }, kans[32], want[32];
	int exists, reg;
	ck_assert_int_eq(cas_store_volume_status(s, "ns/s/v", &exists, &reg), 0);
	ck_assert_int_eq(exists, 0);
	ck_assert_int_eq(cas_store_answer_key(s, "ns/s/v", kans), -ENOENT);
	ck_assert_int_eq(cas_store_volume_key(s, "ns/s/v", client_a, k1), 0);
	ck_assert(memcmp(k1, zero, 32) != 0);
	ck_assert_int_eq(cas_store_volume_key(s, "ns/s/v", client_b, k2), 0);
	ck_assert_mem_eq(k1, k2, 32);
	ck_assert_int_eq(cas_store_volume_key(s, "ns/s/w", client_a, k3), 0);
	ck_assert(memcmp(k1, k3, 32) != 0);
	ck_assert_int_eq(cas_store_volume_status(s, "ns/s/v", &exists, &reg), 0);
	ck_assert_int_eq(exists, 1);
	ck_assert_int_eq(reg, 0);
	ck_assert_int_eq(cas_store_answer_key(s, "ns/s/v", kans), 0);
	cas_answer_key(want, k1);
	ck_assert_mem_eq(kans, want, 32);
	ck_assert(memcmp(kans, k1, 32) != 0);
	/* register keeps the key */
	uint8_t volid[16] = { 1 };
	cas_state v0;
	rnd_state(&v0, 0);
	ck_assert_int_eq(cas_store_register(s, "ns/s/v", client_a, volid, &v0, NULL), 0);
	cas_store_close(s);
	s = reopen();
	ck_assert_int_eq(cas_store_volume_key(s, "ns/s/v", client_a, k2), 0);
	ck_assert_mem_eq(k1, k2, 32);
	cas_store_close(s);
}
END_TEST

struct racer {
	cas_store *s;
	pthread_barrier_t *go;
	const uint8_t *volid;
	cas_state expect, next, cur;
	int rc;
};

static void *race(void *p)
{
	struct racer *r = p;
	pthread_barrier_wait(r->go);
	r->rc = cas_store_cas(r->s, "ns/s/v", client_a, r->volid, &r->expect, &r->next, 1, &r->cur);
	return NULL;
}

/* Four racers (two threads on each of two handles, i.e. two connections to the file) from the same
 * expected state: exactly one wins each round, the others see the winner's state. */
START_TEST(cas_races)
{
	cas_store *a = new_store(), *b = reopen();
	uint8_t volid[16];
	randombytes_buf(volid, 16);
	cas_state state, got;
	rnd_state(&state, 0);
	ck_assert_int_eq(cas_store_register(a, "ns/s/v", client_a, volid, &state, NULL), 0);
	for (int round = 0; round < 40; round++) {
		pthread_barrier_t go;
		pthread_barrier_init(&go, NULL, 4);
		struct racer r[4];
		pthread_t t[4];
		for (int i = 0; i < 4; i++) {
			memset(&r[i], 0, sizeof(r[i]));
			r[i].s = i % 2 ? b : a;
			r[i].go = &go;
			r[i].volid = volid;
			r[i].expect = state;
			rnd_state(&r[i].next, state.version + 1);
			ck_assert_int_eq(pthread_create(&t[i], NULL, race, &r[i]), 0);
		}
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&go);
		int w = -1, stale = 0;
		for (int i = 0; i < 4; i++) {
			if (r[i].rc == 0) {
				ck_assert_msg(w < 0, "round %d: two winners", round);
				w = i;
			} else {
				ck_assert_int_eq(r[i].rc, -ESTALE);
				stale++;
			}
		}
		ck_assert_msg(w >= 0, "round %d: no winner", round);
		ck_assert_int_eq(stale, 3);
		for (int i = 0; i < 4; i++)
			if (i != w)
				state_eq(&r[i].cur, &r[w].next);
		uint8_t id[16];
		ck_assert_int_eq(cas_store_get(b, "ns/s/v", id, &got), 0);
		state_eq(&got, &r[w].next);
		state = r[w].next;
	}
	ck_assert_uint_eq(state.version, 40);
	cas_store_close(a);
	cas_store_close(b);
}
END_TEST

START_TEST(audit_log)
{
	cas_store *s = new_store();
	uint8_t volid[16] = { 7 }, key[32];
	cas_state v0, v1, v2, cur;
	rnd_state(&v0, 0);
	rnd_state(&v1, 1);
	rnd_state(&v2, 2);
	ck_assert_int_eq(cas_store_volume_key(s, "ns/s/v", client_a, key), 0);
	ck_assert_int_eq(cas_store_register(s, "ns/s/v", client_a, volid, &v0, NULL), 0);
	ck_assert_int_eq(cas_store_cas(s, "ns/s/v", client_b, volid, &v0, &v1, 1, &cur), 0);
	ck_assert_int_eq(cas_store_cas(s, "ns/s/v", client_a, volid, &v0, &v2, 1, &cur), -ESTALE);
	ck_assert_int_eq(cas_store_register(s, "ns/s/v", client_b, volid, &v0, NULL), -EEXIST);
	ck_assert_int_eq(cas_store_register(s, "ns/other/v", client_b, volid, &v0, NULL), 0);
	cas_audit_rec *r;
	size_t n;
	ck_assert_int_eq(cas_store_audit_list(s, "ns/s/", 0, &r, &n), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_str_eq(r[0].op, "key");
	ck_assert_str_eq(r[1].op, "register");
	ck_assert_str_eq(r[1].result, "ok");
	state_eq(&r[1].new_state, &v0);
	ck_assert_str_eq(r[2].op, "cas");
	ck_assert_str_eq(r[2].result, "ok");
	ck_assert_mem_eq(r[2].client, client_b, 32);
	ck_assert_int_eq(r[2].have_old, 1);
	state_eq(&r[2].old_state, &v0);
	state_eq(&r[2].new_state, &v1);
	ck_assert_str_eq(r[3].result, "conflict");
	state_eq(&r[3].old_state, &v1); /* what it held */
	state_eq(&r[3].new_state, &v2); /* what was asked for */
	ck_assert_str_eq(r[4].op, "register");
	ck_assert_str_eq(r[4].result, "exists");
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(r[i].volume, "ns/s/v");
	uint64_t after = r[2].seq;
	free(r);
	ck_assert_int_eq(cas_store_audit_list(s, "ns/s/", after, &r, &n), 0);
	ck_assert_uint_eq(n, 2);
	free(r);
	/* a prefix is a prefix, not a pattern: "_" matches only itself */
	ck_assert_int_eq(cas_store_audit_list(s, "ns/_/", 0, &r, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(r);
	cas_store_close(s);
}
END_TEST

/* The store behind the CAS's back: one SQL statement on the file. */
static void edit(const char *sql)
{
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(spec + 7, &db), SQLITE_OK);
	char *msg = NULL;
	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK, "%s: %s", sql, msg ? msg : "");
	sqlite3_close(db);
}

/* The chain checked by a fresh process (nothing remembered): 0 intact, else the first broken seq. */
static uint64_t chain_break(cas_store **s, const char *want_why)
{
	cas_store_close(*s);
	*s = reopen();
	cas_audit_rec *r;
	size_t n;
	uint64_t broken;
	char why[256];
	ck_assert_int_eq(cas_audit_check(*s, audit_key, "", 0, &r, &n, &broken, why, sizeof(why)), 0);
	free(r);
	if (want_why)
		ck_assert_msg(strstr(why, want_why), "reason \"%s\", not \"%s\"", why, want_why);
	return broken;
}

/* A log of six records, checked intact, then edited one way in the file. */
static cas_store *six_records(void)
{
	cas_store *s = new_store();
	uint8_t volid[16] = { 9 }, key[32];
	cas_state st[5];
	for (int i = 0; i < 5; i++)
		rnd_state(&st[i], (uint64_t)i);
	ck_assert_int_eq(cas_store_volume_key(s, "ns/s/v", client_a, key), 0);
	ck_assert_int_eq(cas_store_register(s, "ns/s/v", client_a, volid, &st[0], NULL), 0);
	for (int i = 1; i < 5; i++)
		ck_assert_int_eq(cas_store_cas(s, "ns/s/v", client_a, volid, &st[i - 1], &st[i], 1, NULL), 0);
	ck_assert_uint_eq(chain_break(&s, NULL), 0);
	return s;
}

START_TEST(audit_chain)
{
	cas_store *s = new_store();
	ck_assert_uint_eq(chain_break(&s, NULL), 0); /* empty */
	cas_store_close(s);

	/* intact: every record listed, in order, seq 1..6, each after its predecessor */
	s = six_records();
	cas_audit_rec *r;
	size_t n;
	uint64_t broken;
	char why[256];
	ck_assert_int_eq(cas_audit_check(s, audit_key, "ns/s", 0, &r, &n, &broken, why, sizeof(why)), 0);
	ck_assert_uint_eq(n, 6);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(r[i].seq, i + 1);
	ck_assert_mem_eq(r[3].prev, r[2].mac, 32);
	free(r);
	/* a store opened without the key records nothing */
	cas_store_set_audit_key(s, NULL);
	uint8_t key[32];
	ck_assert_int_lt(cas_store_volume_key(s, "ns/s/v", client_a, key), 0);
	cas_store_close(s);

	/* each edit is found, at the first broken link */
	s = six_records();
	edit("DELETE FROM audit WHERE seq = 3");
	ck_assert_uint_eq(chain_break(&s, "deleted"), 3);
	cas_store_close(s);

	s = six_records();
	edit("UPDATE audit SET new_version = 77 WHERE seq = 4");
	ck_assert_uint_eq(chain_break(&s, "rewritten"), 4);
	cas_store_close(s);

	s = six_records();
	edit("UPDATE audit SET result = 'conflict' WHERE seq = 2");
	ck_assert_uint_eq(chain_break(&s, "rewritten"), 2);
	cas_store_close(s);

	s = six_records(); /* two records swapped: each keeps its MAC, the order is wrong */
	edit("UPDATE audit SET seq = -seq WHERE seq IN (3, 4); UPDATE audit SET seq = 4 WHERE seq = -3;"
	     " UPDATE audit SET seq = 3 WHERE seq = -4");
	ck_assert_uint_eq(chain_break(&s, NULL), 3);
	cas_store_close(s);

	s = six_records(); /* the tail cut, the head left */
	edit("DELETE FROM audit WHERE seq >= 5");
	ck_assert_uint_eq(chain_break(&s, "cut short"), 5);
	cas_store_close(s);

	s = six_records(); /* the tail cut and the head rewritten to the new last record: its MAC is wrong */
	edit("DELETE FROM audit WHERE seq >= 5;"
	     " UPDATE audit_head SET seq = 4, last = (SELECT mac FROM audit WHERE seq = 4)");
	ck_assert_uint_eq(chain_break(&s, "head"), 5);
	cas_store_close(s);

	s = six_records(); /* the head gone */
	edit("DELETE FROM audit_head");
	ck_assert_uint_eq(chain_break(&s, "head"), 1);
	cas_store_close(s);

	s = six_records(); /* a record copied from another store under the same key, in its place */
	edit("UPDATE audit SET prev = zeroblob(32) WHERE seq = 2");
	ck_assert_uint_ne(chain_break(&s, NULL), 0);
	cas_store_close(s);

	/* the tail and the head rolled back together to an earlier copy of the store (here: made with the
	 * key, as a saved copy would be): a fresh process cannot tell; the process that wrote or saw the
	 * later records can */
	s = six_records();
	ck_assert_int_eq(cas_audit_check(s, audit_key, "", 0, &r, &n, &broken, why, sizeof(why)), 0);
	ck_assert_uint_eq(n, 6);
	uint8_t hmac[32];
	char sql[512], lhex[65], hhex[65];
	cas_audit_head_mac(hmac, audit_key, 4, r[3].mac);
	fs_hex(lhex, r[3].mac, 32);
	fs_hex(hhex, hmac, 32);
	free(r);
	snprintf(sql, sizeof(sql), "DELETE FROM audit WHERE seq >= 5; UPDATE audit_head SET seq = 4, last = x'%s', mac = x'%s'",
		 lhex, hhex);
	edit(sql);
	ck_assert_int_eq(cas_audit_check(s, audit_key, "", 0, &r, &n, &broken, why, sizeof(why)), 0);
	ck_assert_uint_eq(broken, 5);
	ck_assert_msg(strstr(why, "rolled back"), "%s", why);
	ck_assert_uint_eq(chain_break(&s, NULL), 0);
	cas_store_close(s);

	/* another key: nothing verifies */
	s = six_records();
	uint8_t other[32] = { 1 };
	ck_assert_int_eq(cas_audit_check(s, other, "", 0, &r, &n, &broken, why, sizeof(why)), 0);
	ck_assert_uint_ne(broken, 0);
	cas_store_close(s);
}
END_TEST

START_TEST(audit_refusal_record)
{
	cas_store *s = new_store();
	cas_audit_rec rec;
	cas_audit_rec_fill(&rec, "ns/s/v", client_b, "key", "forbidden", NULL, NULL);
	rec.count = 41;
	ck_assert_int_eq(cas_store_audit_add(s, &rec), 0);
	ck_assert_uint_eq(chain_break(&s, NULL), 0);
	cas_audit_rec *r;
	size_t n;
	uint64_t broken;
	char why[256];
	ck_assert_int_eq(cas_audit_check(s, audit_key, "ns/s", 0, &r, &n, &broken, why, sizeof(why)), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(r[0].result, "forbidden");
	ck_assert_uint_eq(r[0].count, 41);
	ck_assert_mem_eq(r[0].client, client_b, 32);
	free(r);
	/* "ns/s" is a session: "ns/sx/..." is not about it */
	ck_assert_int_eq(cas_audit_check(s, audit_key, "ns/", 0, &r, &n, &broken, why, sizeof(why)), 0);
	ck_assert_uint_eq(n, 0);
	free(r);
	edit("UPDATE audit SET count = 1");
	ck_assert_uint_eq(chain_break(&s, "rewritten"), 1);
	cas_store_close(s);
}
END_TEST

START_TEST(nonces)
{
	cas_store *s = new_store();
	uint8_t n1[32], n2[32];
	randombytes_buf(n1, 32);
	randombytes_buf(n2, 32);
	ck_assert_int_eq(cas_store_nonce_use(s, n1, 1000), 0);
	ck_assert_int_eq(cas_store_nonce_use(s, n2, 1000), 0);
	ck_assert_int_eq(cas_store_nonce_use(s, n1, 1001), -EALREADY);
	cas_store_close(s);
	s = reopen(); /* durable across a restart */
	ck_assert_int_eq(cas_store_nonce_use(s, n2, 1002), -EALREADY);
	cas_store_close(s);
}
END_TEST

static const char *fp_hex_a = "aa00000000000000000000000000000000000000000000000000000000000000";

START_TEST(sessions_owner)
{
	cas_store *s = new_store();
	char *doc = NULL;
	uint8_t creator[32];
	ck_assert_int_eq(cas_store_session_get(s, "ns/s", creator, &doc), -ENOENT);
	ck_assert_int_eq(cas_store_session_put(s, "ns/s", client_a, "{\"v\":1}", 1), 0);
	ck_assert_int_eq(cas_store_session_put(s, "ns/s", client_b, "{\"v\":2}", 1), -EEXIST);
	ck_assert_int_eq(cas_store_session_put(s, "ns/s", client_a, "{\"v\":3}", 1), -EEXIST);
	/* only the creator updates */
	ck_assert_int_eq(cas_store_session_put(s, "ns/s", client_b, "{\"v\":4}", 0), -EACCES);
	ck_assert_int_eq(cas_store_session_put(s, "ns/t", client_a, "{\"v\":5}", 0), -ENOENT);
	ck_assert_int_eq(cas_store_session_put(s, "ns/s", client_a, "{\"v\":6}", 0), 0);
	ck_assert_int_eq(cas_store_session_get(s, "ns/s", creator, &doc), 0);
	ck_assert_str_eq(doc, "{\"v\":6}");
	ck_assert_mem_eq(creator, client_a, 32);
	free(doc);
	cas_store_close(s);
}
END_TEST

static int parse(const char *yaml, cas_session *s, char *err, size_t errlen)
{
	return cas_session_from_yaml(yaml, strlen(yaml), s, err, errlen);
}

START_TEST(session_yaml_and_acl)
{
	char yaml[2048], err[512];
	snprintf(yaml, sizeof(yaml),
		 "name: ns-1/python-session\nversion: \"0.3\"\n"
		 "volumes:\n"
		 "  - name: V1\n    update_policy: rollback_protected\n    clients: [%s]\n"
		 "    measurements:\n      - %s\n"
		 "  - name: V2\n    update_policy: no_rollback_protection\n"
		 "    clients:\n      - \"AA:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00\"\n",
		 fp_hex_a, "bb00000000000000000000000000000000000000000000000000000000000000");
	cas_session s;
	ck_assert_msg(parse(yaml, &s, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(s.name, "ns-1/python-session");
	ck_assert_uint_eq(s.nvolumes, 2);
	const cas_session_volume *v1 = cas_session_find(&s, "V1"), *v2 = cas_session_find(&s, "V2");
	ck_assert_ptr_nonnull(v1);
	ck_assert_ptr_nonnull(v2);
	ck_assert_ptr_null(cas_session_find(&s, "V3"));
	ck_assert_int_eq(v1->policy, CAS_POLICY_ROLLBACK_PROTECTED);
	ck_assert_int_eq(v2->policy, CAS_POLICY_NO_ROLLBACK_PROTECTION);
	ck_assert_mem_eq(v2->clients[0], client_a, 32);
	uint8_t good_m[32] = { 0xbb }, bad_m[32] = { 0xcc };
	/* V1: client a with the listed measurement only */
	ck_assert_int_eq(cas_session_allows(v1, client_a, good_m, err, sizeof(err)), 0);
	ck_assert_int_eq(cas_session_allows(v1, client_a, bad_m, err, sizeof(err)), -EACCES);
	ck_assert_int_eq(cas_session_allows(v1, client_a, NULL, err, sizeof(err)), -EACCES);
	ck_assert_int_eq(cas_session_allows(v1, client_b, good_m, err, sizeof(err)), -EACCES);
	/* V2: no measurements listed, any or none is fine for client a */
	ck_assert_int_eq(cas_session_allows(v2, client_a, NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(cas_session_allows(v2, client_a, bad_m, err, sizeof(err)), 0);
	ck_assert_int_eq(cas_session_allows(v2, client_b, NULL, err, sizeof(err)), -EACCES);
	/* JSON round trip */
	char *j = cas_session_to_json(&s);
	cas_session t;
	ck_assert_int_eq(cas_session_from_json(j, strlen(j), &t, err, sizeof(err)), 0);
	char *j2 = cas_session_to_json(&t);
	ck_assert_str_eq(j, j2);
	free(j);
	free(j2);
	cas_session_free(&t);
	cas_session_free(&s);
}
END_TEST

START_TEST(session_yaml_refused)
{
	static const struct {
		const char *yaml, *why;
	} bad[] = {
		{ "", "empty" },
		{ "name: [unclosed\n", "bad YAML" },
		{ "name: a/b\nvolumes: [ {name: V, update_policy: rollback_protected, clients: [%s]} ]\nowner: x\n",
		  "unknown field 'owner'" },
		{ "name: a/b\nvolumes: [ {name: V, update_policy: rollback_protected, clients: [%s], keys: 1} ]\n",
		  "unknown field 'keys'" },
		{ "name: a\nvolumes: [ {name: V, update_policy: rollback_protected, clients: [%s]} ]\n", "NAMESPACE/SESSION" },
		{ "name: a/b/c\nvolumes: [ {name: V, update_policy: rollback_protected, clients: [%s]} ]\n", "NAMESPACE" },
		{ "name: a/b\nvolumes: [ {name: V, update_policy: sometimes, clients: [%s]} ]\n", "update_policy" },
		{ "name: a/b\nvolumes: [ {name: V, update_policy: rollback_protected, clients: [abc]} ]\n", "fingerprint" },
		{ "name: a/b\nvolumes: [ {name: V, update_policy: rollback_protected, clients: []} ]\n", "at least one" },
		{ "name: a/b\nvolumes: [ {name: V, update_policy: rollback_protected} ]\n", "missing field 'clients'" },
		{ "name: a/b\nvolumes: []\n", "at least one volume" },
		{ "name: a/b\n", "at least one volume" },
		{ "name: a/b\nname: a/c\nvolumes: [ {name: V, update_policy: rollback_protected, clients: [%s]} ]\n",
		  "duplicate key" },
		{ "name: a/b\nvolumes: [ {name: V, update_policy: rollback_protected, clients: [%s]},"
		  " {name: V, update_policy: rollback_protected, clients: [%s]} ]\n",
		  "named twice" },
		{ "name: a/b\nvolumes: [ {name: ../x, update_policy: rollback_protected, clients: [%s]} ]\n", "volume name" },
		{ "- a\n- b\n", "mapping" },
		{ "name: a/b\nvolumes: [ {name: V, update_policy: rollback_protected, clients: [%s]} ]\n---\nname: c/d\n",
		  "one document" },
		{ "a: &x [*x]\n", "" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char yaml[1024], err[512] = "";
		snprintf(yaml, sizeof(yaml), bad[i].yaml, fp_hex_a, fp_hex_a);
		cas_session s;
		int rc = parse(yaml, &s, err, sizeof(err));
		ck_assert_msg(rc == -1, "case %zu accepted", i);
		ck_assert_msg(err[0] && strstr(err, bad[i].why), "case %zu: reason '%s' lacks '%s'", i, err, bad[i].why);
	}
	/* Aliases cannot blow a small text up into a huge tree (10 levels of 9 references: 9^10 nodes). */
	char bomb[4096];
	int n = snprintf(bomb, sizeof(bomb), "a: &a [x, x, x, x, x, x, x, x, x]\n");
	for (char c = 'b'; c <= 'k'; c++) {
		char p = (char)(c - 1);
		n += snprintf(bomb + n, sizeof(bomb) - (size_t)n, "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", c,
			      c, p, p, p, p, p, p, p, p, p);
	}
	cas_session s;
	char err[512] = "";
	ck_assert_int_eq(parse(bomb, &s, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "too large") || strstr(err, "unknown field"), "%s", err);
}
END_TEST

START_TEST(proto_bodies)
{
	cas_vol_req r, d;
	char err[256];
	memset(&r, 0, sizeof(r));
	randombytes_buf(r.nonce, 32);
	randombytes_buf(r.volid, 16);
	r.time = 1700000000;
	r.have_measurement = 1;
	memset(r.measurement, 0x5a, 32);
	rnd_state(&r.expect, 41);
	rnd_state(&r.next, 42);
	char *b = cas_req_encode(CAS_OP_CAS, &r);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(cas_req_decode(CAS_OP_CAS, b, strlen(b), &d, err, sizeof(err)), 0);
	ck_assert_mem_eq(d.nonce, r.nonce, 32);
	ck_assert_mem_eq(d.volid, r.volid, 16);
	ck_assert_int_eq(d.have_measurement, 1);
	state_eq(&d.expect, &r.expect);
	state_eq(&d.next, &r.next);
	/* the same body for another operation has fields that operation does not know */
	ck_assert_int_eq(cas_req_decode(CAS_OP_STATE, b, strlen(b), &d, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "unknown field"));
	free(b);
	static const char *bad[] = {
		"", "{", "[]", "{\"nonce\": 1}", "{\"nonce\":\"00\",\"time\":1}",
		"{\"nonce\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
		"{\"nonce\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"time\":1,\"x\":0}",
		("{\"nonce\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"time\":1,"
		 "\"nonce\":\"0000000000000000000000000000000000000000000000000000000000000000\"}"),
		"{\"nonce\":\"zz00000000000000000000000000000000000000000000000000000000000000\",\"time\":1}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(cas_req_decode(CAS_OP_KEY, bad[i], strlen(bad[i]), &d, err, sizeof(err)) == -1, "case %zu", i);
	/* cas must move exactly one version forward; register starts at 0 */
	r.next.version = 43;
	b = cas_req_encode(CAS_OP_CAS, &r);
	ck_assert_int_eq(cas_req_decode(CAS_OP_CAS, b, strlen(b), &d, err, sizeof(err)), -1);
	free(b);
	r.next.version = 1;
	b = cas_req_encode(CAS_OP_REGISTER, &r);
	ck_assert_int_eq(cas_req_decode(CAS_OP_REGISTER, b, strlen(b), &d, err, sizeof(err)), -1);
	free(b);

	/* The answer MAC binds the operation, the volume, the status and every field of every answer. */
	uint8_t vk[32], kans[32], m1[32], m2[32];
	randombytes_buf(vk, 32);
	cas_answer_key(kans, vk);
	cas_vol_ans an;
	memset(&an, 0, sizeof(an));
	memcpy(an.nonce, r.nonce, 32);
	memcpy(an.volid, r.volid, 16);
	rnd_state(&an.state, 5);
	cas_answer_mac(m1, kans, "a/b/c", CAS_OP_STATE, 200, &an);
	cas_answer_mac(m2, kans, "a/b/c", CAS_OP_STATE, 412, &an);
	ck_assert(memcmp(m1, m2, 32) != 0);
	cas_answer_mac(m2, kans, "a/b/d", CAS_OP_STATE, 200, &an);
	ck_assert(memcmp(m1, m2, 32) != 0);
	cas_answer_mac(m2, kans, "a/b/c", CAS_OP_LEASE, 200, &an);
	ck_assert(memcmp(m1, m2, 32) != 0);
	an.state.version++;
	cas_answer_mac(m2, kans, "a/b/c", CAS_OP_STATE, 200, &an);
	ck_assert(memcmp(m1, m2, 32) != 0);
	an.state.version--;
	an.nonce[0] ^= 1;
	cas_answer_mac(m2, kans, "a/b/c", CAS_OP_STATE, 200, &an);
	ck_assert(memcmp(m1, m2, 32) != 0);
	an.nonce[0] ^= 1;

	/* info: the policy, the registered flag and the session's creator are authenticated, so that a proxy
	 * that terminates TLS cannot turn rollback_protected into no_rollback_protection. */
	memset(&an, 0, sizeof(an));
	memcpy(an.nonce, r.nonce, 32);
	strcpy(an.policy, "rollback_protected");
	an.registered = 1;
	randombytes_buf(an.creator, 32);
	cas_answer_mac(an.mac, kans, "a/b/c", CAS_OP_INFO, 200, &an);
	b = cas_ans_encode(CAS_OP_INFO, 200, &an);
	cas_vol_ans dec;
	ck_assert_int_eq(cas_ans_decode(CAS_OP_INFO, 200, b, strlen(b), &dec, err, sizeof(err)), 0);
	free(b);
	cas_answer_mac(m1, kans, "a/b/c", CAS_OP_INFO, 200, &dec);
	ck_assert_mem_eq(m1, dec.mac, 32);
	ck_assert_mem_eq(dec.creator, an.creator, 32);
	cas_vol_ans forged = dec;
	strcpy(forged.policy, "no_rollback_protection");
	cas_answer_mac(m2, kans, "a/b/c", CAS_OP_INFO, 200, &forged);
	ck_assert(memcmp(m2, dec.mac, 32) != 0);
	forged = dec;
	forged.registered = 0;
	cas_answer_mac(m2, kans, "a/b/c", CAS_OP_INFO, 200, &forged);
	ck_assert(memcmp(m2, dec.mac, 32) != 0);
	forged = dec;
	forged.creator[31] ^= 1;
	cas_answer_mac(m2, kans, "a/b/c", CAS_OP_INFO, 200, &forged);
	ck_assert(memcmp(m2, dec.mac, 32) != 0);
	/* An info or key answer without its MAC is refused by the decoder. */
	static const char *const unmacd[] = {
		"{\"nonce\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"policy\":\"rollback_protected\","
		"\"registered\":true,\"creator\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
		"{\"nonce\":\"0000000000000000000000000000000000000000000000000000000000000000\","
		"\"key\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
	};
	ck_assert_int_eq(cas_ans_decode(CAS_OP_INFO, 200, unmacd[0], strlen(unmacd[0]), &dec, err, sizeof(err)), -1);
	ck_assert_int_eq(cas_ans_decode(CAS_OP_KEY, 200, unmacd[1], strlen(unmacd[1]), &dec, err, sizeof(err)), -1);
	/* key: the MAC is under the answer key of the key it carries. */
	memset(&an, 0, sizeof(an));
	memcpy(an.nonce, r.nonce, 32);
	memcpy(an.key, vk, 32);
	cas_answer_mac(m1, kans, "a/b/c", CAS_OP_KEY, 200, &an);
	cas_answer_mac(m2, kans, "a/b/c", CAS_OP_INFO, 200, &an);
	ck_assert(memcmp(m1, m2, 32) != 0);

	/* Fingerprints as sessions and --cas-creator take them. */
	uint8_t fpv[32];
	ck_assert_int_eq(cas_fingerprint_parse("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", fpv), 0);
	ck_assert_uint_eq(fpv[1], 0x11);
	ck_assert_int_eq(cas_fingerprint_parse("0011", fpv), -1);

	/* URIs */
	char auth[256], vol[512];
	ck_assert_int_eq(cas_uri_parse("cas://127.0.0.1:7000/ns/s/V1", auth, sizeof(auth), vol, sizeof(vol)), 0);
	ck_assert_str_eq(auth, "127.0.0.1:7000");
	ck_assert_str_eq(vol, "ns/s/V1");
	ck_assert_int_eq(cas_uri_parse("cas://[::1]:7000/ns/s/V1", auth, sizeof(auth), vol, sizeof(vol)), 0);
	ck_assert_str_eq(auth, "[::1]:7000");
	ck_assert_int_eq(cas_uri_parse("cas://h:7000/v1", auth, sizeof(auth), vol, sizeof(vol)), -ENOTSUP);
	static const char *bad_uris[] = { "cas://h/ns/s/v", "cas://h:0/ns/s/v", "cas://h:99999/ns/s/v", "cas://:1/ns/s/v",
					  "cas://h:1/ns/../v", "cas://h:1/ns/s/", "cas://h:1//s/v", "cas://u@h:1/ns/s/v" };
	for (size_t i = 0; i < sizeof(bad_uris) / sizeof(bad_uris[0]); i++)
		ck_assert_msg(cas_uri_parse(bad_uris[i], auth, sizeof(auth), vol, sizeof(vol)) == -EINVAL, "%s", bad_uris[i]);
}
END_TEST

/* The writer lease: taken, renewed, refused to another holder while live, taken over once lapsed, given up
 * only by its holder; every answer carries the volume's state. */
START_TEST(writer_lease)
{
	cas_store *s = new_store();
	uint8_t volid[16], other_id[16], ha[16] = { 0xa1 }, hb[16] = { 0xb2 };
	randombytes_buf(volid, 16);
	randombytes_buf(other_id, 16);
	cas_state v0, cur;
	int64_t until = 0;
	rnd_state(&v0, 0);
	ck_assert_int_eq(cas_store_lease(s, "ns/s/v", volid, ha, 1000, 30, &cur, &until), -ENOENT);
	ck_assert_int_eq(cas_store_register(s, "ns/s/v", client_a, volid, &v0, &cur), 0);
	ck_assert_int_eq(cas_store_lease(s, "ns/s/v", other_id, ha, 1000, 30, &cur, &until), -EXDEV);
	ck_assert_int_eq(cas_store_lease(s, "ns/s/v", volid, ha, 1000, 30, &cur, &until), 0);
	state_eq(&cur, &v0);
	ck_assert_int_eq(cas_store_lease(s, "ns/s/v", volid, hb, 1010, 30, &cur, &until), -EBUSY);
	ck_assert_int_eq(until, 1030);
	ck_assert_int_eq(cas_store_lease(s, "ns/s/v", volid, ha, 1020, 30, &cur, &until), 0); /* renewed */
	ck_assert_int_eq(cas_store_lease(s, "ns/s/v", volid, hb, 1040, 30, &cur, &until), -EBUSY);
	ck_assert_int_eq(cas_store_lease(s, "ns/s/v", volid, hb, 1040, 0, &cur, &until), 0); /* not b's: kept */
	ck_assert_int_eq(cas_store_lease(s, "ns/s/v", volid, hb, 1049, 30, &cur, &until), -EBUSY);
	ck_assert_int_eq(cas_store_lease(s, "ns/s/v", volid, hb, 1051, 30, &cur, &until), 0); /* lapsed */
	ck_assert_int_eq(cas_store_lease(s, "ns/s/v", volid, ha, 1052, 30, &cur, &until), -EBUSY);
	ck_assert_int_eq(cas_store_lease(s, "ns/s/v", volid, hb, 1053, 0, &cur, &until), 0); /* given up */
	ck_assert_int_eq(cas_store_lease(s, "ns/s/v", volid, ha, 1054, 30, &cur, &until), 0);
	cas_store_close(s);

	/* the request body */
	cas_vol_req r, d;
	char err[256];
	memset(&r, 0, sizeof(r));
	randombytes_buf(r.nonce, 32);
	memcpy(r.volid, volid, 16);
	memcpy(r.holder, ha, 16);
	r.ttl = 30;
	char *b = cas_req_encode(CAS_OP_LEASE, &r);
	ck_assert_int_eq(cas_req_decode(CAS_OP_LEASE, b, strlen(b), &d, err, sizeof(err)), 0);
	ck_assert_mem_eq(d.holder, ha, 16);
	ck_assert_uint_eq(d.ttl, 30);
	free(b);
	r.ttl = CAS_LEASE_MAX + 1;
	b = cas_req_encode(CAS_OP_LEASE, &r);
	ck_assert_int_eq(cas_req_decode(CAS_OP_LEASE, b, strlen(b), &d, err, sizeof(err)), -1);
	free(b);
}
END_TEST

/* ---- keys at rest ---- */

/* Whether the n bytes of p, or their hex, are anywhere in the store's files (the file, its log, its index). */
static int in_files(const uint8_t *p, size_t n)
{
	char hex[2 * 64 + 1];
	fs_hex(hex, p, n);
	static const char *const sfx[] = { "", "-wal", "-shm" };
	for (size_t i = 0; i < 3; i++) {
		char path[600];
		snprintf(path, sizeof(path), "%s%s", spec + 7, sfx[i]);
		FILE *f = fopen(path, "rb");
		if (!f)
			continue;
		static char buf[8 << 20];
		size_t len = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		if (memmem(buf, len, p, n) || memmem(buf, len, hex, 2 * n))
			return 1;
	}
	return 0;
}

static int open_with(const uint8_t *master, cas_store **s, char *err, size_t errlen)
{
	struct cas_store_conf c = { .master = master };
	int rc = cas_store_open(spec, &c, s, err, errlen);
	if (!rc)
		cas_store_set_audit_key(*s, audit_key);
	return rc;
}

START_TEST(keys_sealed_at_rest)
{
	cas_store *s = new_store();
	uint8_t k1[32], k2[32];
	ck_assert_int_eq(cas_store_volume_key(s, "ns/s/v", client_a, k1), 0);
	cas_store_close(s);
	ck_assert_msg(!in_files(k1, 32), "the volume key is in the store's files");
	/* only its sealed form, of the sealed size */
	sqlite3 *db;
	sqlite3_stmt *st;
	ck_assert_int_eq(sqlite3_open(spec + 7, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT length(key) FROM volumes", -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(st, 0), CAS_SEALED_KEY_BYTES);
	sqlite3_finalize(st);
	sqlite3_close(db);
	s = reopen();
	ck_assert_int_eq(cas_store_volume_key(s, "ns/s/v", client_a, k2), 0);
	ck_assert_mem_eq(k1, k2, 32);
	cas_store_close(s);
}
END_TEST

START_TEST(wrong_master_refused)
{
	cas_store *s = new_store(), *t = NULL;
	uint8_t k[32];
	char err[512] = "";
	ck_assert_int_eq(cas_store_volume_key(s, "ns/s/v", client_a, k), 0);
	cas_store_close(s);
	ck_assert_int_eq(open_with(other_master, &t, err, sizeof(err)), -EKEYREJECTED);
	ck_assert_ptr_null(t);
	ck_assert_msg(strstr(err, "master key is not this store's"), "%s", err);
	/* even an empty store is bound to the master key it was first opened with */
	s = new_store();
	cas_store_close(s);
	ck_assert_int_eq(open_with(other_master, &t, err, sizeof(err)), -EKEYREJECTED);
}
END_TEST

/* A sealed key moved to another volume's row (or altered) does not open: an error, never a key. */
START_TEST(sealed_row_swap_refused)
{
	cas_store *s = new_store();
	uint8_t kv[32], kw[32], got[32];
	ck_assert_int_eq(cas_store_volume_key(s, "ns/s/v", client_a, kv), 0);
	ck_assert_int_eq(cas_store_volume_key(s, "ns/s/w", client_a, kw), 0);
	cas_store_close(s);
	edit("UPDATE volumes SET key = (SELECT key FROM volumes WHERE name = 'ns/s/w') WHERE name = 'ns/s/v'");
	s = reopen();
	memset(got, 0x55, 32);
	ck_assert_int_eq(cas_store_volume_key(s, "ns/s/v", client_a, got), -EBADMSG);
	ck_assert_msg(strstr(cas_store_errmsg(s), "does not open under the master key"), "%s", cas_store_errmsg(s));
	ck_assert(memcmp(got, kw, 32) != 0);
	int exists, reg;
	ck_assert_int_eq(cas_store_volume_status(s, "ns/s/v", &exists, &reg), -EBADMSG);
	ck_assert_int_eq(cas_store_volume_key(s, "ns/s/w", client_a, got), 0);
	ck_assert_mem_eq(got, kw, 32);
	cas_store_close(s);
	edit("UPDATE volumes SET key = substr(key, 1, 40) || x'00' || substr(key, 42) WHERE name = 'ns/s/w'");
	s = reopen();
	ck_assert_int_eq(cas_store_volume_key(s, "ns/s/w", client_a, got), -EBADMSG);
	cas_store_close(s);
}
END_TEST

/* A store from before sealing: refused with the way out; seal-store seals it and leaves no clear copy. */
START_TEST(clear_store_sealed)
{
	cas_store *s = new_store(), *t = NULL;
	uint8_t k[32], got[32];
	char err[512] = "", sql[300], hex[65];
	randombytes_buf(k, 32);
	fs_hex(hex, k, 32);
	ck_assert_int_eq(cas_store_volume_key(s, "ns/s/v", client_a, got), 0);
	cas_store_close(s);
	snprintf(sql, sizeof(sql), "DELETE FROM cas_meta WHERE k = 'master_check'; UPDATE volumes SET key = x'%s'", hex);
	edit(sql);
	ck_assert(in_files(k, 32));
	ck_assert_int_eq(open_with(master_key, &t, err, sizeof(err)), -EPROTO);
	ck_assert_msg(strstr(err, "fshield cas seal-store"), "%s", err);
	unsigned n = 0;
	ck_assert_int_eq(cas_store_rekey(spec, &conf, NULL, &n, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_msg(!in_files(k, 32), "a clear copy of the key is left in the store's files");
	/* sealing twice is refused */
	ck_assert_int_eq(cas_store_rekey(spec, &conf, NULL, &n, err, sizeof(err)), -EKEYREJECTED);
	s = reopen();
	ck_assert_int_eq(cas_store_volume_key(s, "ns/s/v", client_a, got), 0);
	ck_assert_mem_eq(got, k, 32);
	cas_store_close(s);
}
END_TEST

START_TEST(master_rotation)
{
	cas_store *s = new_store(), *t = NULL;
	uint8_t k1[32], k2[32], got[32];
	char err[512] = "";
	ck_assert_int_eq(cas_store_volume_key(s, "ns/s/v", client_a, k1), 0);
	ck_assert_int_eq(cas_store_volume_key(s, "ns/s/w", client_a, k2), 0);
	cas_store_close(s);
	struct cas_store_conf nc = { .master = other_master };
	unsigned n = 0;
	/* the wrong old key changes nothing */
	static const uint8_t third[32] = { 3 };
	ck_assert_int_eq(cas_store_rekey(spec, &nc, third, &n, err, sizeof(err)), -EKEYREJECTED);
	ck_assert_int_eq(open_with(master_key, &t, err, sizeof(err)), 0);
	cas_store_close(t);
	ck_assert_int_eq(cas_store_rekey(spec, &nc, master_key, &n, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(open_with(master_key, &t, err, sizeof(err)), -EKEYREJECTED);
	ck_assert_int_eq(open_with(other_master, &t, err, sizeof(err)), 0);
	ck_assert_int_eq(cas_store_volume_key(t, "ns/s/v", client_a, got), 0);
	ck_assert_mem_eq(got, k1, 32);
	ck_assert_int_eq(cas_store_volume_key(t, "ns/s/w", client_a, got), 0);
	ck_assert_mem_eq(got, k2, 32);
	cas_store_close(t);
	/* a row sealed under the old key (an old backup's) does not open under the new one */
	uint8_t old_sealed[CAS_SEALED_KEY_BYTES];
	cas_key_seal(old_sealed, master_key, "ns/s/v", k1);
	ck_assert_int_eq(cas_key_open(got, other_master, "ns/s/v", old_sealed, sizeof(old_sealed)), -EBADMSG);
	ck_assert_int_eq(cas_key_open(got, master_key, "ns/s/w", old_sealed, sizeof(old_sealed)), -EBADMSG);
	ck_assert_int_eq(cas_key_open(got, master_key, "ns/s/v", old_sealed, sizeof(old_sealed)), 0);
	ck_assert_mem_eq(got, k1, 32);
}
END_TEST

/* A store rotated under a running CAS: that CAS seals no new key under its (old) master key, and opens
 * none of the re-sealed ones: errors, never a key another master key's store cannot open. */
START_TEST(rotated_under_a_running_store)
{
	cas_store *s = new_store();
	uint8_t k[32], got[32];
	char err[512] = "";
	ck_assert_int_eq(cas_store_volume_key(s, "ns/s/v", client_a, k), 0);
	struct cas_store_conf nc = { .master = other_master };
	unsigned n = 0;
	ck_assert_int_eq(cas_store_rekey(spec, &nc, master_key, &n, err, sizeof(err)), 0);
	ck_assert_int_eq(cas_store_volume_key(s, "ns/s/w", client_a, got), -EKEYREJECTED);
	ck_assert_msg(strstr(cas_store_errmsg(s), "restart it with the new master key file"), "%s", cas_store_errmsg(s));
	uint8_t volid[16] = { 7 };
	cas_state v0;
	rnd_state(&v0, 0);
	ck_assert_int_eq(cas_store_register(s, "ns/s/x", client_a, volid, &v0, NULL), -EKEYREJECTED);
	ck_assert_int_eq(cas_store_volume_key(s, "ns/s/v", client_a, got), -EBADMSG);
	cas_store_close(s);
	cas_store *t = NULL;
	ck_assert_int_eq(open_with(other_master, &t, err, sizeof(err)), 0);
	ck_assert_int_eq(cas_store_volume_key(t, "ns/s/v", client_a, got), 0);
	ck_assert_mem_eq(got, k, 32);
	int exists, reg;
	ck_assert_int_eq(cas_store_volume_status(t, "ns/s/w", &exists, &reg), 0);
	ck_assert_int_eq(exists, 0);
	cas_store_close(t);
}
END_TEST

/* The master key file: hex as keygen writes it, refused when its group or others may read it. */
START_TEST(master_key_file_mode)
{
	char path[600], err[512];
	uint8_t k[32];
	snprintf(path, sizeof(path), "%s/mk-%08x", test_scratch_base, randombytes_random());
	ck_assert_int_eq(fs_key_generate_file(path), 0);
	ck_assert_int_eq(cas_master_key_file(path, k, err, sizeof(err)), 0);
	ck_assert_int_eq(chmod(path, 0640), 0);
	ck_assert_int_eq(cas_master_key_file(path, k, err, sizeof(err)), -EPERM);
	ck_assert_msg(strstr(err, "chmod 600"), "%s", err);
	ck_assert_int_eq(chmod(path, 0604), 0);
	ck_assert_int_eq(cas_master_key_file(path, k, err, sizeof(err)), -EPERM);
	unlink(path);
	ck_assert_int_eq(cas_master_key_file(path, k, err, sizeof(err)), -ENOENT);
	ck_assert_msg(strstr(err, "fshield keygen"), "%s", err);
}
END_TEST

static Suite *cas_suite(void)
{
	Suite *s = suite_create("cas");
	TEST_CASE(s, "store", "unit-cas", 120, register_get_cas, key_generated_once, cas_races, audit_log, audit_chain,
		  audit_refusal_record, nonces, sessions_owner, writer_lease);
	TEST_CASE(s, "keys_at_rest", "unit-cas-keys", 120, keys_sealed_at_rest, wrong_master_refused, sealed_row_swap_refused,
		  clear_store_sealed, master_rotation, rotated_under_a_running_store, master_key_file_mode);
	TEST_CASE(s, "policy", NULL, 0, session_yaml_and_acl, session_yaml_refused, proto_bodies);
	return s;
}

TEST_MAIN(cas_suite)
