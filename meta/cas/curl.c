/* The libcurl setup shared by the CAS client and the etcd store. */
#include "meta/cas/curl.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Grows by copying into a larger buffer and wiping the old one: realloc would leave copies of the answer
 * so far (a volume key, for the CAS client) in freed memory. */
int cas_curl_buf_append(struct cas_curl_buf *b, const void *src, size_t len)
{
	if (b->n + len + 1 > b->cap) {
		size_t nc = b->cap ? b->cap : 4096;
		while (nc < b->n + len + 1)
			nc *= 2;
		char *g = malloc(nc);
		if (!g)
			return -1;
		if (b->p) {
			memcpy(g, b->p, b->n);
			sodium_memzero(b->p, b->cap);
			free(b->p);
		}
		b->p = g;
		b->cap = nc;
	}
	memcpy(b->p + b->n, src, len);
	b->n += len;
	b->p[b->n] = 0;
	return 0;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct cas_curl_buf *b = ud;
	size_t n = size * nmemb;
	if (b->n + n > b->max) {
		b->over = 1;
		return 0;
	}
	return cas_curl_buf_append(b, ptr, n) == 0 ? n : 0;
}

void cas_curl_buf_free(struct cas_curl_buf *b)
{
	if (b->p) {
		sodium_memzero(b->p, b->cap);
		free(b->p);
	}
	b->p = NULL;
	b->n = b->cap = 0;
}

void cas_curl_setup(CURL *h, const char *url, const char *protocol, long timeout_ms, struct cas_curl_buf *b)
{
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, protocol);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
}
