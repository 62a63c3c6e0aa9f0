/* What the CAS client (HTTPS) and the etcd store (HTTP) share in their use of libcurl: the options every
 * request sets, and an answer buffer with a size limit. */
#ifndef FS_CAS_CURL_H
#define FS_CAS_CURL_H
#include <curl/curl.h>
#include <stddef.h>

struct cas_curl_buf {
	char *p; /* NUL-terminated; NULL until data arrives */
	size_t n, cap;
	size_t max; /* a larger answer ends the transfer with over set */
	int over;
};

/* Resets h, then: url, only the given protocol, no signals, never a proxy from the environment, the
 * timeout for connecting and for the whole request, and the answer into b. */
void cas_curl_setup(CURL *h, const char *url, const char *protocol, long timeout_ms, struct cas_curl_buf *b);
/* Appends len bytes to b (NUL-terminated after them; no size limit here). A buffer outgrown is wiped
 * before it is freed, as the answer may carry a key. 0, or -1 when memory ran out (b unchanged). */
int cas_curl_buf_append(struct cas_curl_buf *b, const void *src, size_t len);
/* Wipes and frees the answer. */
void cas_curl_buf_free(struct cas_curl_buf *b);
#endif
