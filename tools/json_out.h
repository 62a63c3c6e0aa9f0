/* JSON output of the subcommands, written by hand for now; a later change moves it all to jansson.
 * Header-only so that the small programs (fshield-verify, fshield-info), which link only their own
 * subcommand, get it too. Strings are escaped byte by byte: paths need not be UTF-8. */
#ifndef FS_TOOLS_JSON_OUT_H
#define FS_TOOLS_JSON_OUT_H
#include <stdint.h>
#include <stdio.h>

/* Prints a JSON string (quoted, escaped), or null. */
static inline void json_str(const char *s)
{
	if (!s) {
		fputs("null", stdout);
		return;
	}
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

/* The end of a finding object: its chunk and byte range (null when chunk < 0), its message, the brace. */
static inline void json_finding_end(int64_t chunk, uint64_t byte_a, uint64_t byte_b, const char *message)
{
	if (chunk >= 0)
		printf(", \"chunk\": %lld, \"bytes\": [%llu, %llu]", (long long)chunk, (unsigned long long)byte_a,
		       (unsigned long long)byte_b);
	else
		printf(", \"chunk\": null, \"bytes\": null");
	printf(", \"message\": ");
	json_str(message);
	printf("}");
}
#endif
