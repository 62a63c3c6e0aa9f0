/* JSON output of the subcommands: names that are not UTF-8, numbers, printing. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/json_out.h"

/* The length of the valid UTF-8 sequence at p (as RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF), or 0 when the byte at p does not start one. */
static size_t utf8_seq(const unsigned char *p)
{
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	size_t n;
	unsigned lo = 0x80, hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

int utf8_valid(const char *s)
{
	size_t k;
	while (*s && (k = utf8_seq((const unsigned char *)s)) != 0)
		s += k;
	return !*s;
}

int json_set_name(json_t *o, const char *key, const char *value)
{
	if (!value)
		return json_object_set_new(o, key, json_null());
	const unsigned char *s = (const unsigned char *)value;
	size_t len = strlen(value), i, k;
	if (utf8_valid(value)) {
		json_t *j = json_stringn(value, len);
		return j ? json_object_set_new(o, key, j) : -1;
	}
	/* Not UTF-8: a readable string with \xHH for each stray byte, and the exact bytes. */
	char *shown = malloc(4 * len + 1), *b64 = malloc(sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL));
	char *key64 = malloc(strlen(key) + 5);
	int rc = -1;
	if (!shown || !b64 || !key64)
		goto out;
	size_t w = 0;
	for (i = 0; i < len;) {
		if ((k = utf8_seq(s + i)) != 0) {
			memcpy(shown + w, s + i, k);
			w += k, i += k;
		} else {
			w += (size_t)sprintf(shown + w, "\\x%02x", s[i]);
			i++;
		}
	}
	sodium_bin2base64(b64, sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL), s, len,
			  sodium_base64_VARIANT_ORIGINAL);
	sprintf(key64, "%s_b64", key);
	rc = json_object_set_new(o, key, json_stringn(shown, w)) || json_object_set_new(o, key64, json_string(b64)) ? -1
														      : 0;
out:
	free(shown);
	free(b64);
	free(key64);
	return rc;
}

int json_set_u64(json_t *o, const char *key, uint64_t v)
{
	/* jansson's integers are signed 64-bit: every count and version here fits. */
	return json_object_set_new(o, key, json_integer((json_int_t)v));
}

int json_set_finding_end(json_t *o, int64_t chunk, uint64_t byte_a, uint64_t byte_b, const char *message)
{
	int rc;
	if (chunk >= 0)
		rc = json_object_set_new(o, "chunk", json_integer(chunk)) ||
		     json_object_set_new(o, "bytes", json_pack("[II]", (json_int_t)byte_a, (json_int_t)byte_b));
	else
		rc = json_object_set_new(o, "chunk", json_null()) || json_object_set_new(o, "bytes", json_null());
	return rc || json_set_name(o, "message", message) ? -1 : 0;
}

int json_print(json_t *doc, int pretty)
{
	/* Ten significant digits: the rates and ratios are rounded before, as the tables show them. */
	char *s = doc ? json_dumps(doc, (pretty ? JSON_INDENT(2) : 0) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10))
		      : NULL;
	json_decref(doc);
	if (!s) {
		fprintf(stderr, "fshield: out of memory building the JSON output\n");
		return -1;
	}
	int rc = puts(s) < 0 || fflush(stdout) != 0 ? -1 : 0;
	sodium_memzero(s, strlen(s)); /* some documents carry a key (fspf encrypt, image) */
	free(s);
	return rc;
}
