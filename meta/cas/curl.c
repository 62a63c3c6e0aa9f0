/* The libcurl setup shared by the CAS client and the etcd store. */
#include "meta/cas/curl.h"

#include "meta/common/vec.h"

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct cas_curl_buf *b = ud;
	size_t n = size * nmemb;
	if (b->n + n > b->max) {
		b->over = 1;
		return 0;
	}
	return vec_append_bytes(&b->p, &b->n, &b->cap, ptr, n) == 0 ? n : 0;
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
