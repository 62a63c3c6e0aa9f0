/* Secret hygiene: key memory is locked and left out of core dumps, and the CAS client's answer buffer
 * (the answer to key carries the volume key) never leaves a copy of the key in memory it gives back.
 *
 * The second part watches the heap: this runner replaces free and realloc (the replacements forward to
 * glibc) and, while a test arms it in its own thread, counts every block given back that still holds the
 * watched bytes. realloc is modelled as the move it may always be (new block, copy, old block freed), so a
 * buffer that grows by realloc is caught whether or not glibc would have moved it this time. */
#include <malloc.h>
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "crypto/aead.h"
#include "crypto/keys.h"
#include "meta/cas/client.h"
#include "meta/cas/curl.h"
#include "meta/cas/proto.h"
#include "meta/cas/wipe.h"
#include "testutil.h"

extern void __libc_free(void *);
extern void *__libc_malloc(size_t);

/* volatile: the compiler may assume that free and realloc touch no variable of the program */
static __thread const void *volatile watch;
static __thread volatile size_t watch_len;
static __thread volatile unsigned given_back_with_secret;

static int holds_watched(void *p)
{
	return watch && p && memmem(p, malloc_usable_size(p), watch, watch_len) != NULL;
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#ifdef UNDER_ASAN
/* ASan owns the heap (a block from its malloc cannot go to glibc's free): watch through its free hook,
 * which runs before the block is given back. Its realloc always moves, as modelled below. */
#include <sanitizer/allocator_interface.h>

static void on_malloc(const volatile void *p, size_t n)
{
	(void)p, (void)n;
}

static void on_free(const volatile void *p)
{
	if (holds_watched((void *)p))
		given_back_with_secret++;
}

__attribute__((constructor)) static void watch_heap(void)
{
	__sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}
#else
void free(void *p)
{
	if (holds_watched(p))
		given_back_with_secret++;
	__libc_free(p);
}

void *realloc(void *p, size_t n)
{
	if (!p)
		return __libc_malloc(n);
	if (n == 0) {
		free(p);
		return NULL;
	}
	void *q = __libc_malloc(n);
	if (!q)
		return NULL;
	size_t old = malloc_usable_size(p);
	memcpy(q, p, old < n ? old : n);
	free(p);
	return q;
}
#endif

/* The flags of the mapping that holds p, from /proc/self/smaps ("VmFlags: rd wr ... lo dd ..."). */
static void vmflags_of(const void *p, char *out, size_t outlen)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	ck_assert_ptr_nonnull(f);
	char line[512];
	int in = 0;
	out[0] = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else if (in && !strncmp(line, "VmFlags:", 8)) {
			snprintf(out, outlen, "%s", line + 8);
			break;
		}
	}
	fclose(f);
}

/* Key buffers (the volume's keys and subkeys, fspf keys, per-file keys while derived) are in locked pages
 * (VmFlags lo) that a core dump leaves out (dd). */
START_TEST(key_memory_locked_and_not_dumped)
{
	uint8_t *k = fs_key_alloc();
	ck_assert_ptr_nonnull(k);
	char flags[512];
	vmflags_of(k, flags, sizeof(flags));
#ifndef UNDER_ASAN /* ASan's interceptors make mlock a no-op */
	ck_assert_msg(strstr(flags, " lo"), "key memory is not locked: VmFlags:%s", flags);
#endif
	ck_assert_msg(strstr(flags, " dd"), "key memory is not excluded from core dumps: VmFlags:%s", flags);
	fs_key_free(k);
}
END_TEST

#ifndef UNDER_ASAN
static long vmlck_kb(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	ck_assert_ptr_nonnull(f);
	char line[256];
	long kb = -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* An XChaCha20-Poly1305 context keeps its key in locked memory: each one adds a locked page. */
START_TEST(xchacha_context_key_locked)
{
	enum { N = 8 };
	uint8_t key[FS_KEY_BYTES] = { 7 };
	fs_aead *a[N];
	long before = vmlck_kb();
	for (int i = 0; i < N; i++)
		ck_assert_ptr_nonnull(a[i] = fs_aead_new(FS_AEAD_XCHACHA20POLY1305, key));
	long after = vmlck_kb();
	for (int i = 0; i < N; i++)
		fs_aead_free(a[i]);
	ck_assert_msg(after - before >= N * 4, "VmLck grew by %ld kB for %d contexts", after - before, N);
}
END_TEST
#endif

/* An answer to key arrives in pieces and outgrows its buffer several times; no buffer it leaves behind,
 * nor the final one when freed, still holds the key. */
START_TEST(cas_answer_buffer_wiped)
{
	char key_hex[65], answer[20000];
	uint8_t key[32];
	randombytes_buf(key, sizeof(key));
	fs_hex(key_hex, key, 32);
	int n = snprintf(answer, sizeof(answer), "{\"nonce\": \"%064d\", \"key\": \"%s\", \"pad\": \"", 0, key_hex);
	memset(answer + n, 'x', sizeof(answer) - (size_t)n - 3);
	memcpy(answer + sizeof(answer) - 3, "\"}", 3);

	struct cas_curl_buf b = { .max = sizeof(answer) };
	watch = key_hex, watch_len = 64, given_back_with_secret = 0;
	for (size_t off = 0; off < sizeof(answer); off += 1000) {
		size_t len = sizeof(answer) - off < 1000 ? sizeof(answer) - off : 1000;
		ck_assert_int_eq(cas_curl_buf_append(&b, answer + off, len), 0);
	}
	unsigned during = given_back_with_secret;
	ck_assert_mem_eq(b.p, answer, sizeof(answer));
	ck_assert_uint_ge(b.cap, 4 * 4096); /* it did grow, more than once */
	cas_curl_buf_free(&b);
	unsigned total = given_back_with_secret;
	watch = NULL;
	ck_assert_msg(during == 0, "%u outgrown answer buffers still held the key", during);
	ck_assert_msg(total == 0, "the answer buffer was freed holding the key");
	ck_assert_ptr_null(b.p);
}
END_TEST

/* Decoding the answer to key leaves no copy of the key's hex in the JSON blocks it frees, once a CAS
 * client exists in the process. */
START_TEST(cas_answer_json_wiped)
{
	cas_tls tls = { .cert = "c.crt", .key = "c.key", .ca = "ca.crt" };
	cas_client *cl;
	char err[256];
	ck_assert_int_eq(cas_client_new("127.0.0.1:1", &tls, &cl, err, sizeof(err)), 0);
	char key_hex[65], body[256];
	uint8_t key[32];
	randombytes_buf(key, sizeof(key));
	fs_hex(key_hex, key, 32);
	snprintf(body, sizeof(body), "{\"nonce\": \"%064d\", \"key\": \"%s\", \"mac\": \"%064d\"}", 0, key_hex, 0);
	cas_vol_ans ans;
	watch = key_hex, watch_len = 64, given_back_with_secret = 0;
	ck_assert_int_eq(cas_ans_decode(CAS_OP_KEY, 200, body, strlen(body), &ans, err, sizeof(err)), 0);
	unsigned leaked = given_back_with_secret;
	watch = NULL;
	ck_assert_mem_eq(ans.key, key, 32);
	sodium_memzero(&ans, sizeof(ans));
	cas_client_free(cl);
	ck_assert_msg(leaked == 0, "%u JSON blocks were freed holding the key", leaked);
}
END_TEST

/* The CAS server's answer to key, as it builds and sends it (cas_ans_encode, then the free the server's
 * answers use): neither the JSON blocks it frees nor the answer text leave a copy of the key. */
START_TEST(cas_server_answer_wiped)
{
	cas_json_wipe_on_free(); /* as cas_server_run does before its first answer */
	cas_vol_ans a;
	memset(&a, 0, sizeof(a));
	randombytes_buf(a.key, 32);
	char key_hex[65];
	fs_hex(key_hex, a.key, 32);
	watch = key_hex, watch_len = 64, given_back_with_secret = 0;
	char *body = cas_ans_encode(CAS_OP_KEY, 200, &a);
	ck_assert_ptr_nonnull(body);
	ck_assert_ptr_nonnull(strstr(body, key_hex)); /* the answer does carry it */
	unsigned building = given_back_with_secret;
	cas_wiping_free(body);
	unsigned total = given_back_with_secret;
	watch = NULL;
	sodium_memzero(&a, sizeof(a));
	ck_assert_msg(building == 0, "%u JSON blocks were freed holding the key while the answer was built", building);
	ck_assert_msg(total == 0, "the answer text was freed holding the key");
}
END_TEST

/* Called through volatile pointers: the compiler may not fold an allocation that never escapes away. */
static void *(*volatile heap_malloc)(size_t) = malloc;
static void *(*volatile heap_realloc)(void *, size_t) = realloc;
static void (*volatile heap_free)(void *) = free;

/* The watch itself works: a block freed with the key in it is counted (else the test above proves nothing). */
START_TEST(watch_catches_a_leak)
{
	char *p = heap_malloc(128);
	ck_assert_ptr_nonnull(p);
	memset(p, 0, 128);
	memcpy(p + 10, "0123456789abcdef", 16);
	watch = "0123456789abcdef", watch_len = 16, given_back_with_secret = 0;
	char *q = heap_realloc(p, 4096); /* moved: the old block goes back holding the bytes */
	ck_assert_uint_eq(given_back_with_secret, 1);
	heap_free(q);
	ck_assert_uint_eq(given_back_with_secret, 2);
	watch = NULL;
}
END_TEST

static int on_valgrind(void)
{
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
	return RUNNING_ON_VALGRIND != 0;
#endif
#endif
	return 0;
}

static Suite *secrets_suite(void)
{
	Suite *s = suite_create("secrets");
	TEST_CASE(s, "memory", NULL, 30, key_memory_locked_and_not_dumped);
	/* Valgrind replaces malloc, realloc and free, ours too: the heap is watched outside it only. */
	if (!on_valgrind())
		TEST_CASE(s, "heap", NULL, 30, cas_answer_buffer_wiped, cas_answer_json_wiped, cas_server_answer_wiped,
			  watch_catches_a_leak);
	else
		fprintf(stderr, "test_secrets: under valgrind, which replaces the allocator: the heap watch is not run\n");
#ifndef UNDER_ASAN
	/* ASan's interceptors make mlock a no-op: locked memory is counted in the ordinary build only. */
	TEST_CASE(s, "locked", NULL, 30, xchacha_context_key_locked);
#endif
	return s;
}

TEST_MAIN(secrets_suite)
