/* The fspf parser on attacker bytes (meta/fspf/fspf.h). The first input byte picks what the rest is:
 *   0: a manifest body: fspf_parse_body; what parses must re-encode to exactly the input;
 *   1: a whole fspf file (either form): fspf_parse_file under a fixed key, without and with a tag;
 *   2: a working fspf: parsed, then sealed with its own key; the sealed bytes must open under that key
 *      and tag and give back the same body, and must stop opening when one byte (chosen by the input)
 *      changes.
 * Properties besides "no crash, no leak": refusals carry a terminated reason; a sealed file never opens
 * under a key that did not seal it. */
#define FUZZ_NAME "fuzz_fspf"
#define FUZZ_SETUP setup
#include "fuzz.h"

#include "meta/common/status.h"
#include "meta/fspf/fspf.h"

static uint8_t key[32];

static void setup(void)
{
	fuzz_key(key, 0, 1);
}

static void check_err(const char *err, size_t cap)
{
	if (!memchr(err, 0, cap) || !err[0])
		fail("refusal without a terminated reason");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	if (size < 1)
		return 0;
	const uint8_t *b = data + 1;
	size_t n = size - 1;
	memset(err, 0x5a, sizeof(err));
	if (data[0] % 3 == 0) {
		fspf *m = calloc(1, sizeof(*m));
		if (!m)
			return 0;
		if (fspf_parse_body(m, b, n, err, sizeof(err)) == 0) {
			size_t len;
			uint8_t *again = fspf_encode_body(m, &len);
			if (!again || len != n || memcmp(again, b, n) != 0)
				fail("a parsed body does not re-encode to the input");
			free(again);
		} else {
			check_err(err, sizeof(err));
		}
		fspf_free(m);
	} else if (data[0] % 3 == 1) {
		fspf *m = NULL;
		uint8_t tag[32] = { 0 };
		int st = fspf_parse_file(b, n, key, NULL, &m, err, sizeof(err));
		if (st != FS_OK)
			check_err(err, sizeof(err));
		if (st == FS_OK && m->sealed && fspf_tag_of(b, n, key, tag) != 0)
			fail("no tag for a sealed file that opened");
		fspf_free(m);
		m = NULL;
		if (fspf_parse_file(b, n, key, tag, &m, err, sizeof(err)) == FS_OK && m->sealed && st != FS_OK)
			fail("opened with a tag but not without");
		fspf_free(m);
	} else {
		fspf *m = NULL, *s = NULL;
		if (fspf_parse_file(b, n, NULL, NULL, &m, err, sizeof(err)) != FS_OK) {
			check_err(err, sizeof(err));
			return 0;
		}
		size_t sn, bn, bn2;
		uint8_t tag[32];
		uint8_t *sealed = fspf_encode_sealed(m, &sn, tag);
		if (!sealed)
			fail("cannot seal");
		if (fspf_parse_file(sealed, sn, m->key, tag, &s, err, sizeof(err)) != FS_OK)
			fail("a sealed fspf does not open under its key and tag");
		uint8_t *b1 = fspf_encode_body(m, &bn), *b2 = fspf_encode_body(s, &bn2);
		if (!b1 || !b2 || bn != bn2 || memcmp(b1, b2, bn) != 0)
			fail("sealing changed the manifest");
		free(b1);
		free(b2);
		fspf_free(s);
		s = NULL;
		size_t at = (n ? data[n] : 0) * 7919u % sn;
		sealed[at] ^= 0x01;
		if (fspf_parse_file(sealed, sn, m->key, tag, &s, err, sizeof(err)) == FS_OK)
			fail("a changed sealed fspf still opens");
		if (fspf_parse_file(sealed, sn, key, NULL, &s, err, sizeof(err)) == FS_OK && memcmp(key, m->key, 32))
			fail("a sealed fspf opened under a key that did not seal it");
		fspf_free(s);
		free(sealed);
		fspf_free(m);
	}
	return 0;
}
