/* volume.hdr as read from the backing directory: fs_header_parse on arbitrary bytes and, when they parse,
 * fs_header_authenticate under a fixed key.
 *
 * Properties checked besides "no crash":
 *  - a refused header comes with a non-empty, terminated reason, also in a buffer too small for it;
 *  - a parsed header satisfies every documented bound (cipher, hash, key source, chunk size, buckets);
 *  - authentication says OK only for bytes the key holder would write: re-encoding the parsed header
 *    under the key gives back the input, byte for byte; any other input is WRONG_KEY or TAMPERED;
 *  - a key that never made a header never authenticates one. */
#define FUZZ_NAME "fuzz_header"
#define FUZZ_SETUP setup
#include "fuzz.h"

#include "crypto/aead.h"
#include "meta/header.h"

static uint8_t key[32], other[32];

static void setup(void)
{
	/* The key of the seed headers: 00 01 02 ... 1f (the key file used to make them). */
	fuzz_key(key, 0, 1);
	for (int i = 0; i < 32; i++)
		other[i] = (uint8_t)(0xa5 ^ (i * 7));
}

static int pow2(uint32_t x)
{
	return x && !(x & (x - 1));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fs_header h;
	char err[256], tiny[5];
	memset(err, 0x5a, sizeof(err));
	int rc = fs_header_parse(data, size, &h, err, sizeof(err));
	if (rc != 0) {
		if (rc != -1)
			fail("parse returned neither 0 nor -1");
		if (!memchr(err, 0, sizeof(err)) || !err[0])
			fail("refused header without a terminated reason");
		memset(tiny, 0x5a, sizeof(tiny));
		if (fs_header_parse(data, size, &h, tiny, sizeof(tiny)) != -1 || !memchr(tiny, 0, sizeof(tiny)))
			fail("reason not terminated in a small buffer");
		return 0;
	}
	if (size != FS_HDR_BYTES || h.format_version != FS_FORMAT_VERSION)
		fail("parsed a header of the wrong length or version");
	if (!fs_aead_alg_valid(h.aead_alg) || h.hash_alg != FS_HASH_BLAKE2B_256 ||
	    (h.key_source != FS_KEYSRC_RAW && h.key_source != FS_KEYSRC_PASSPHRASE && h.key_source != FS_KEYSRC_KEYFILE))
		fail("parsed a header naming an unknown algorithm or key source");
	if (!pow2(h.chunk_size) || h.chunk_size < 4096 || h.chunk_size > (1u << 20) || !pow2(h.buckets) ||
	    h.buckets > (1u << 20))
		fail("parsed a header with an out-of-range chunk size or bucket count");

	int a = fs_header_authenticate(data, &h, key);
	if (a == FS_HDR_AUTH_OK) {
		fs_header again = h;
		uint8_t enc[FS_HDR_BYTES];
		fs_header_encode(&again, key, enc);
		if (memcmp(enc, data, FS_HDR_BYTES) != 0)
			fail("authenticated a header the key holder did not write");
	} else if (a != FS_HDR_AUTH_WRONG_KEY && a != FS_HDR_AUTH_TAMPERED) {
		fail("authenticate returned an unknown value");
	}
	a = fs_header_authenticate(data, &h, other);
	if (a == FS_HDR_AUTH_OK)
		fail("authenticated a header under a key that never wrote one");
	if (a != FS_HDR_AUTH_WRONG_KEY && a != FS_HDR_AUTH_TAMPERED)
		fail("authenticate returned an unknown value");
	return 0;
}
