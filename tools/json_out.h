/* JSON output of the subcommands, built with jansson (never by hand). A name need not be UTF-8 (a file
 * name is bytes): json_set_name stores a value that is valid UTF-8 as it is, and any other value as a
 * readable string, each byte outside a valid UTF-8 sequence written as the four characters \xhh (as
 * Python's bytes.decode("utf-8", "backslashreplace") writes it), plus its exact bytes in base64 in a
 * sibling field KEY_b64 (docs/CLI.md, "JSON output"). */
#ifndef FS_TOOLS_JSON_OUT_H
#define FS_TOOLS_JSON_OUT_H
#include <jansson.h>
#include <stdint.h>

/* 1 when s is valid UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). */
int utf8_valid(const char *s);
/* Sets o[key] to value (null when value is NULL) and, when value is not UTF-8, o[key_b64]. 0 or -1. */
int json_set_name(json_t *o, const char *key, const char *value);
/* Sets o[key] to the unsigned number v. 0 or -1. */
int json_set_u64(json_t *o, const char *key, uint64_t v);
/* Sets a finding's chunk and byte range (both null when chunk < 0) and its message. 0 or -1. */
int json_set_finding_end(json_t *o, int64_t chunk, uint64_t byte_a, uint64_t byte_b, const char *message);
/* Prints doc on standard output with a newline (indented when pretty) and drops it. 0, or -1 when it
 * could not be built or written (the caller reports an I/O error). */
int json_print(json_t *doc, int pretty);
#endif
