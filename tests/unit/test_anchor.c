/* Unit tests of the trust anchor (meta/anchor/anchor.h): the local "file:" trust store and the "none" opt-out. */
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "meta/anchor/anchor.h"
#include "tests/unit/testutil.h"

/* A scratch directory and the URI of a trust store inside it. */
struct store {
	char *dir, *path, *uri;
};

static void store_make(struct store *s, const char *name)
{
	s->dir = test_tmpdir("anchor");
	ck_assert_int_ge(asprintf(&s->path, "%s/%s", s->dir, name), 0);
	ck_assert_int_ge(asprintf(&s->uri, "file:%s", s->path), 0);
}

static void store_done(struct store *s)
{
	test_rmrf(s->dir);
	free(s->dir);
	free(s->path);
	free(s->uri);
}

static fs_anchor *open_ok(const char *uri, int create)
{
	fs_anchor *a = NULL;
	char err[256] = "";
	int rc = fs_anchor_open(uri, create, &a, err, sizeof(err));
	ck_assert_msg(rc == 0, "open %s: %d (%s)", uri, rc, err);
	ck_assert_ptr_nonnull(a);
	return a;
}

static void random_state(fs_anchor_state *st, uint64_t version)
{
	st->version = version;
	randombytes_buf(st->root, sizeof(st->root));
}

static void assert_state_eq(const fs_anchor_state *a, const fs_anchor_state *b)
{
	ck_assert_uint_eq(a->version, b->version);
	ck_assert_mem_eq(a->root, b->root, 32);
}

static void get_ok(fs_anchor *a, const uint8_t volid[16], fs_anchor_state *out)
{
	char err[256] = "";
	int rc = fs_anchor_get(a, volid, out, err, sizeof(err));
	ck_assert_msg(rc == 0, "get: %d (%s)", rc, err);
}

/* The anchor holds want for the volume. */
static void assert_held(fs_anchor *a, const uint8_t volid[16], const fs_anchor_state *want)
{
	fs_anchor_state got;
	get_ok(a, volid, &got);
	assert_state_eq(&got, want);
}

static void register_ok(fs_anchor *a, const uint8_t volid[16], const fs_anchor_state *st)
{
	char err[256] = "";
	int rc = fs_anchor_register(a, volid, st, err, sizeof(err));
	ck_assert_msg(rc == 0, "register: %d (%s)", rc, err);
}

/* A compare-and-swap that must succeed (asking for no current state back). */
static void cas_ok(fs_anchor *a, const uint8_t volid[16], const fs_anchor_state *expect, const fs_anchor_state *next)
{
	char err[256] = "";
	int rc = fs_anchor_cas(a, volid, expect, next, NULL, err, sizeof(err));
	ck_assert_msg(rc == 0, "cas: %d (%s)", rc, err);
}

/* A new store "trust.db", opened with create, and a random volume id. */
static fs_anchor *store_open(struct store *s, uint8_t volid[16])
{
	store_make(s, "trust.db");
	fs_anchor *a = open_ok(s->uri, 1);
	randombytes_buf(volid, 16);
	return a;
}

static void store_close(struct store *s, fs_anchor *a)
{
	fs_anchor_close(a);
	store_done(s);
}

START_TEST(register_get_cas)
{
	struct store s;
	uint8_t vol[16];
	fs_anchor *a = store_open(&s, vol);
	ck_assert_str_eq(fs_anchor_uri(a), s.uri);
	ck_assert_int_eq(fs_anchor_is_none(a), 0);

	fs_anchor_state v0, v1, v2, got;
	random_state(&v0, 0);
	random_state(&v1, 1);
	random_state(&v2, 2);
	char err[256] = "";

	register_ok(a, vol, &v0);
	assert_held(a, vol, &v0);

	/* CAS from the state held: moves forward, and reports nothing as current. */
	memset(&got, 0xcc, sizeof(got));
	ck_assert_int_eq(fs_anchor_cas(a, vol, &v0, &v1, &got, err, sizeof(err)), 0);
	assert_held(a, vol, &v1);
	cas_ok(a, vol, &v1, &v2);
	assert_held(a, vol, &v2);

	/* The state survives closing and reopening (without create). */
	fs_anchor_close(a);
	a = open_ok(s.uri, 0);
	assert_held(a, vol, &v2);
	store_close(&s, a);
}
END_TEST

START_TEST(cas_stale)
{
	struct store s;
	uint8_t vol[16];
	fs_anchor *a = store_open(&s, vol);
	fs_anchor_state v0, v1, v2, cur;
	random_state(&v0, 0);
	random_state(&v1, 1);
	random_state(&v2, 2);
	register_ok(a, vol, &v0);
	cas_ok(a, vol, &v0, &v1);

	/* A rollback: expecting the old state. */
	char err[256] = "";
	memset(&cur, 0, sizeof(cur));
	ck_assert_int_eq(fs_anchor_cas(a, vol, &v0, &v2, &cur, err, sizeof(err)), -ESTALE);
	assert_state_eq(&cur, &v1);
	ck_assert_msg(strstr(err, "version 1") != NULL, "message: %s", err);

	/* A fork: the right version with another root. */
	fs_anchor_state fork = v1;
	fork.root[31] ^= 1;
	memset(&cur, 0, sizeof(cur));
	ck_assert_int_eq(fs_anchor_cas(a, vol, &fork, &v2, &cur, err, sizeof(err)), -ESTALE);
	assert_state_eq(&cur, &v1);
	/* The right root with another version. */
	fs_anchor_state wrongver = v1;
	wrongver.version = 7;
	ck_assert_int_eq(fs_anchor_cas(a, vol, &wrongver, &v2, NULL, err, sizeof(err)), -ESTALE);

	/* None of those changed anything. */
	assert_held(a, vol, &v1);
	store_close(&s, a);
}
END_TEST

START_TEST(register_twice_and_unknown)
{
	struct store s;
	uint8_t vol[16], other[16];
	fs_anchor *a = store_open(&s, vol);
	memcpy(other, vol, sizeof(other));
	other[0] ^= 1;
	fs_anchor_state v0, v5, got;
	random_state(&v0, 0);
	random_state(&v5, 5);
	register_ok(a, vol, &v0);

	/* A second registration is refused and does not replace the first. */
	char err[256] = "";
	ck_assert_int_eq(fs_anchor_register(a, vol, &v5, err, sizeof(err)), -EEXIST);
	ck_assert_msg(strstr(err, "registered already") != NULL, "message: %s", err);
	assert_held(a, vol, &v0);

	/* A volume id one bit off is another volume, unknown here. */
	err[0] = 0;
	ck_assert_int_eq(fs_anchor_get(a, other, &got, err, sizeof(err)), -ENOENT);
	ck_assert_msg(strstr(err, "not registered") != NULL, "message: %s", err);
	ck_assert_int_eq(fs_anchor_cas(a, other, &v0, &v5, NULL, err, sizeof(err)), -ENOENT);
	/* ...and it can be registered on its own. */
	register_ok(a, other, &v5);
	assert_held(a, other, &v5);
	assert_held(a, vol, &v0);
	store_close(&s, a);
}
END_TEST

START_TEST(full_version_range)
{
	/* Versions are u64 all the way: the top bit must survive SQLite's signed integers. */
	struct store s;
	uint8_t vol[16];
	fs_anchor *a = store_open(&s, vol);
	fs_anchor_state lo, hi, top;
	random_state(&lo, (uint64_t)INT64_MAX);
	random_state(&hi, (uint64_t)INT64_MAX + 1);
	random_state(&top, UINT64_MAX);
	register_ok(a, vol, &lo);
	cas_ok(a, vol, &lo, &hi);
	assert_held(a, vol, &hi);
	cas_ok(a, vol, &hi, &top);
	assert_held(a, vol, &top);
	store_close(&s, a);
}
END_TEST

START_TEST(open_missing_without_create)
{
	struct store s;
	store_make(&s, "trust.db");
	fs_anchor *a = NULL;
	char err[256] = "";
	ck_assert_int_eq(fs_anchor_open(s.uri, 0, &a, err, sizeof(err)), -ENOENT);
	ck_assert_ptr_null(a);
	/* The message names the store and the reason. */
	ck_assert_msg(strstr(err, s.path) != NULL, "message lacks the path: %s", err);
	ck_assert_msg(strstr(err, strerror(ENOENT)) != NULL, "message lacks the reason: %s", err);
	/* ...and nothing was created as a side effect. */
	struct stat st;
	ck_assert_int_eq(stat(s.path, &st), -1);
	ck_assert_int_eq(errno, ENOENT);

	/* A missing directory on the way is no different. */
	char *uri;
	ck_assert_int_ge(asprintf(&uri, "file:%s/no/such/dir/trust.db", s.dir), 0);
	err[0] = 0;
	ck_assert_int_eq(fs_anchor_open(uri, 0, &a, err, sizeof(err)), -ENOENT);
	ck_assert_ptr_null(a);
	ck_assert(err[0] != 0);
	free(uri);
	store_done(&s);
}
END_TEST

START_TEST(create_makes_private_store)
{
	struct store s;
	store_make(&s, "a/b/trust.db");
	mode_t old = umask(022);
	fs_anchor *a = open_ok(s.uri, 1);
	umask(old);
	uint8_t vol[16];
	randombytes_buf(vol, sizeof(vol));
	fs_anchor_state v0;
	random_state(&v0, 0);
	register_ok(a, vol, &v0);

	struct stat st;
	ck_assert_int_eq(stat(s.path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_msg((st.st_mode & 07777) == 0600, "trust store mode %o", st.st_mode & 07777);
	/* The directories made for it are private too. */
	char *d;
	ck_assert_int_ge(asprintf(&d, "%s/a/b", s.dir), 0);
	ck_assert_int_eq(stat(d, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_msg((st.st_mode & 07777) == 0700, "directory mode %o", st.st_mode & 07777);
	free(d);
	store_close(&s, a);
}
END_TEST

START_TEST(store_identity)
{
	struct store s1, s2;
	store_make(&s1, "one.db");
	store_make(&s2, "two.db");
	static const uint8_t zero[16] = { 0 };
	uint8_t id1[16], id1again[16], id2[16];

	fs_anchor *a = open_ok(s1.uri, 1);
	fs_anchor_id(a, id1);
	ck_assert(memcmp(id1, zero, 16) != 0);
	fs_anchor_close(a);
	/* Stable across reopening, with or without create. */
	a = open_ok(s1.uri, 0);
	fs_anchor_id(a, id1again);
	ck_assert_mem_eq(id1again, id1, 16);
	fs_anchor_close(a);
	a = open_ok(s1.uri, 1);
	fs_anchor_id(a, id1again);
	ck_assert_mem_eq(id1again, id1, 16);
	/* Two handles on one store agree. */
	fs_anchor *b = open_ok(s1.uri, 0);
	fs_anchor_id(b, id1again);
	ck_assert_mem_eq(id1again, id1, 16);
	fs_anchor_close(b);
	fs_anchor_close(a);

	/* Another store has another identity. */
	a = open_ok(s2.uri, 1);
	fs_anchor_id(a, id2);
	ck_assert(memcmp(id2, zero, 16) != 0);
	ck_assert(memcmp(id2, id1, 16) != 0);
	fs_anchor_close(a);
	store_done(&s1);
	store_done(&s2);
}
END_TEST

START_TEST(none_anchor)
{
	/* "none": no store, nothing recorded, nothing refused; an all-zero identity. */
	fs_anchor *a = open_ok("none", 0);
	ck_assert_int_eq(fs_anchor_is_none(a), 1);
	ck_assert_str_eq(fs_anchor_uri(a), "none");
	uint8_t id[16], zero[16] = { 0 };
	memset(id, 0xff, sizeof(id));
	fs_anchor_id(a, id);
	ck_assert_mem_eq(id, zero, 16);

	uint8_t vol[16];
	randombytes_buf(vol, sizeof(vol));
	fs_anchor_state v0, v1, v9, got;
	random_state(&v0, 0);
	random_state(&v1, 1);
	random_state(&v9, 9);
	register_ok(a, vol, &v0);
	register_ok(a, vol, &v0); /* no -EEXIST */
	cas_ok(a, vol, &v0, &v1);
	cas_ok(a, vol, &v9, &v0); /* no -ESTALE */
	/* It holds no state to give back. */
	char err[256] = "";
	ck_assert_int_eq(fs_anchor_get(a, vol, &got, err, sizeof(err)), -ENOENT);
	ck_assert(err[0] != 0);
	fs_anchor_close(a);
	a = open_ok("none", 1);
	ck_assert_int_eq(fs_anchor_is_none(a), 1);
	fs_anchor_close(a);
}
END_TEST

START_TEST(unknown_kinds)
{
	static const char *bad[] = {
		"", "None", "none ", "/var/lib/fshield/trust.db", "http://example.com/anchor", "sqlite:/tmp/x.db",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fs_anchor *a = NULL;
		char err[256] = "";
		int rc = fs_anchor_open(bad[i], 1, &a, err, sizeof(err));
		ck_assert_msg(rc == -EINVAL, "'%s': %d, want -EINVAL", bad[i], rc);
		ck_assert_ptr_null(a);
		ck_assert_msg(strstr(err, "unknown kind") != NULL, "'%s': message %s", bad[i], err);
		ck_assert_int_eq(fs_anchor_uri_check(bad[i], err, sizeof(err)), -EINVAL);
		ck_assert_msg(strstr(err, "unknown kind") != NULL, "'%s': message %s", bad[i], err);
	}
	/* A file: trust store is named by an absolute path; a relative one is refused as such. */
	static const char *relative[] = { "file:", "file:relative/trust.db", "file:~/trust.db" };
	for (size_t i = 0; i < sizeof(relative) / sizeof(relative[0]); i++) {
		fs_anchor *a = NULL;
		char err[256] = "";
		ck_assert_int_eq(fs_anchor_open(relative[i], 1, &a, err, sizeof(err)), -EINVAL);
		ck_assert_ptr_null(a);
		ck_assert_msg(strstr(err, "must be absolute") != NULL, "'%s': message %s", relative[i], err);
		ck_assert_int_eq(fs_anchor_uri_check(relative[i], err, sizeof(err)), -EINVAL);
		ck_assert_msg(strstr(err, "must be absolute") != NULL, "'%s': message %s", relative[i], err);
	}
	char cerr[256];
	ck_assert_int_eq(fs_anchor_uri_check("file://host/trust.db", cerr, sizeof(cerr)), -EINVAL);
	ck_assert_msg(strstr(cerr, "with a host") != NULL, "message %s", cerr);
	ck_assert_int_eq(fs_anchor_uri_check("file:///var/lib/fshield/trust.db", cerr, sizeof(cerr)), 0);
	ck_assert_int_eq(fs_anchor_uri_check("file:/var/lib/fshield/trust.db", cerr, sizeof(cerr)), 0);
	ck_assert_int_eq(fs_anchor_uri_check("none", cerr, sizeof(cerr)), 0);
	/* A remote CAS service is a known kind that this build does not include. */
	fs_anchor *a = NULL;
	char err[256] = "";
	ck_assert_int_eq(fs_anchor_open("cas://anchor.example:7000/v1", 1, &a, err, sizeof(err)), -ENOTSUP);
	ck_assert_ptr_null(a);
	ck_assert(err[0] != 0);
}
END_TEST

START_TEST(default_uri)
{
	/* The library knows only explicit URIs and its default; $FSHIELD_TRUST is resolved by the command
	 * line (tests/e2e/12-cli-env.sh checks that, with the same cases as before). */
	ck_assert_str_eq(fs_anchor_default_uri(NULL), FS_DEFAULT_TRUST);
	ck_assert_str_eq(fs_anchor_default_uri(""), FS_DEFAULT_TRUST);
	ck_assert_str_eq(fs_anchor_default_uri("none"), "none");
	ck_assert_str_eq(fs_anchor_default_uri("file:/srv/trust.db"), "file:/srv/trust.db");
}
END_TEST

START_TEST(two_handles_sequential)
{
	/* Two handles on one store, as two processes would have: each sees what the other did. */
	struct store s;
	uint8_t vol[16];
	fs_anchor *a = store_open(&s, vol), *b = open_ok(s.uri, 0);
	fs_anchor_state v0, va, vb, cur;
	random_state(&v0, 0);
	random_state(&va, 1);
	random_state(&vb, 1); /* same version, other root: the two writers have forked */
	char err[256] = "";
	register_ok(a, vol, &v0);
	assert_held(b, vol, &v0);
	ck_assert_int_eq(fs_anchor_register(b, vol, &v0, err, sizeof(err)), -EEXIST);

	cas_ok(a, vol, &v0, &va);
	memset(&cur, 0, sizeof(cur));
	ck_assert_int_eq(fs_anchor_cas(b, vol, &v0, &vb, &cur, err, sizeof(err)), -ESTALE);
	assert_state_eq(&cur, &va);
	assert_held(b, vol, &va);
	fs_anchor_close(b);
	store_close(&s, a);
}
END_TEST

/* Two threads, each with its own handle, race a CAS from the same expected state. */
struct racer {
	fs_anchor *a;
	pthread_barrier_t *go;
	const uint8_t *vol;
	fs_anchor_state expect, next, cur;
	int rc;
	char err[256];
};

static void *race(void *p)
{
	struct racer *r = p;
	pthread_barrier_wait(r->go);
	r->rc = fs_anchor_cas(r->a, r->vol, &r->expect, &r->next, &r->cur, r->err, sizeof(r->err));
	return NULL;
}

START_TEST(competing_cas_one_wins)
{
	struct store s;
	uint8_t vol[16];
	fs_anchor *a = store_open(&s, vol), *b = open_ok(s.uri, 0);
	fs_anchor_state state;
	random_state(&state, 0);
	register_ok(a, vol, &state);

	int wins[2] = { 0, 0 };
	for (int round = 0; round < 50; round++) {
		pthread_barrier_t go;
		ck_assert_int_eq(pthread_barrier_init(&go, NULL, 2), 0);
		struct racer r[2];
		pthread_t t[2];
		for (int i = 0; i < 2; i++) {
			memset(&r[i], 0, sizeof(r[i]));
			r[i].a = i ? b : a;
			r[i].go = &go;
			r[i].vol = vol;
			r[i].expect = state;
			random_state(&r[i].next, state.version + 1);
			ck_assert_int_eq(pthread_create(&t[i], NULL, race, &r[i]), 0);
		}
		for (int i = 0; i < 2; i++)
			ck_assert_int_eq(pthread_join(t[i], NULL), 0);
		pthread_barrier_destroy(&go);

		/* Exactly one wins; the other is told it is stale and shown the winner's state. */
		ck_assert_msg((r[0].rc == 0 && r[1].rc == -ESTALE) || (r[0].rc == -ESTALE && r[1].rc == 0),
			      "round %d: rc %d (%s) and %d (%s)", round, r[0].rc, r[0].err, r[1].rc, r[1].err);
		int w = r[0].rc == 0 ? 0 : 1;
		wins[w]++;
		assert_state_eq(&r[1 - w].cur, &r[w].next);
		assert_held(a, vol, &r[w].next);
		assert_held(b, vol, &r[w].next);
		state = r[w].next;
	}
	ck_assert_int_eq(wins[0] + wins[1], 50);
	ck_assert_uint_eq(state.version, 50);
	fs_anchor_close(b);
	store_close(&s, a);
}
END_TEST

/* The writer lease of a file: store: refused to another holder while its process lives, taken over at
 * once when that process is gone, given up only by its holder; it hands back the volume's state. */
START_TEST(writer_lease)
{
	struct store s;
	store_make(&s, "trust.db");
	fs_anchor *a = open_ok(s.uri, 1);
	uint8_t volid[16], ha[16] = { 0xa1 }, hb[16] = { 0xb2 };
	randombytes_buf(volid, 16);
	fs_anchor_state st, cur;
	random_state(&st, 0);
	char err[512] = "";
	ck_assert_int_eq(fs_anchor_lease(a, volid, ha, 30, &cur, err, sizeof(err)), -ENOENT);
	ck_assert_int_eq(fs_anchor_register(a, volid, &st, err, sizeof(err)), 0);
	ck_assert_int_eq(fs_anchor_lease(a, volid, ha, 30, &cur, err, sizeof(err)), 0);
	ck_assert_uint_eq(cur.version, 0);
	ck_assert_mem_eq(cur.root, st.root, 32);
	ck_assert_int_eq(fs_anchor_lease(a, volid, hb, 30, &cur, err, sizeof(err)), -EBUSY);
	ck_assert_msg(strstr(err, "open read-write elsewhere") && strstr(err, "on this host"), "%s", err);
	ck_assert_int_eq(fs_anchor_lease(a, volid, hb, 0, &cur, err, sizeof(err)), 0); /* not b's: kept */
	ck_assert_int_eq(fs_anchor_lease(a, volid, hb, 30, &cur, err, sizeof(err)), -EBUSY);
	ck_assert_int_eq(fs_anchor_lease(a, volid, ha, 0, &cur, err, sizeof(err)), 0); /* given up */
	ck_assert_int_eq(fs_anchor_lease(a, volid, hb, 30, &cur, err, sizeof(err)), 0);
	ck_assert_int_eq(fs_anchor_lease(a, volid, hb, 0, &cur, err, sizeof(err)), 0);

	/* a process that took the lease and died without giving it up */
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		fs_anchor *c = NULL;
		char e[256];
		_exit(fs_anchor_open(s.uri, 0, &c, e, sizeof(e)) || fs_anchor_lease(c, volid, ha, 30, &cur, e, sizeof(e)) ? 1 : 0);
	}
	int wst;
	ck_assert_int_eq(waitpid(pid, &wst, 0), pid);
	ck_assert(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
	ck_assert_int_eq(fs_anchor_lease(a, volid, hb, 30, &cur, err, sizeof(err)), 0);
	fs_anchor_close(a);
	store_done(&s);
}
END_TEST

static Suite *anchor_suite(void)
{
	Suite *s = suite_create("anchor");
	TEST_CASE(s, "file", "unit-anchor", 60, register_get_cas, cas_stale, register_twice_and_unknown,
		  full_version_range, open_missing_without_create, create_makes_private_store, store_identity,
		  two_handles_sequential, competing_cas_one_wins);
	TEST_CASE(s, "lease", "unit-anchor", 60, writer_lease);
	TEST_CASE(s, "kinds", NULL, 0, none_anchor, unknown_kinds, default_uri);
	return s;
}

TEST_MAIN(anchor_suite)
