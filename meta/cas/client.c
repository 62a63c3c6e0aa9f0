/* HTTPS client of the CAS over libcurl. */
#include "crypto/secret_mode.h"
#include "meta/cas/client.h"
#include "meta/cas/wipe.h"

#include <curl/curl.h>
#include <limits.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <errno.h>
#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/cas/curl.h"
#include "meta/cas/proto.h"
#include "meta/common/reason.h"

#define MAX_ANSWER (1024 * 1024)

struct cas_client {
	CURL *h;
	char base[300];
	char *cert, *key, *ca;
	long timeout_ms;
	int have_fp;
	uint8_t fp[32];
	int bad_purpose; /* the last handshake met a server certificate without serverAuth */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ok;
static void curl_init(void)
{
	curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
	cas_json_wipe_on_free();
}

/* No answer: a timeout, a refused connection, a TLS failure, or another transport error. */
static int curl_errno(CURLcode rc)
{
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT: return -ECONNREFUSED;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED: return -EPROTO;
	default: return -EIO;
	}
}

/* The chain is verified as usual, and then the server's own certificate must say it is one: an
 * extendedKeyUsage with serverAuth. OpenSSL's default check passes a certificate without that extension,
 * so where one CA signs clients and the server, any client certificate could answer as the CAS. */
static int verify_server(X509_STORE_CTX *x, void *arg)
{
	cas_client *c = arg;
	if (X509_verify_cert(x) != 1) {
		/* OpenSSL's own check refuses a certificate whose extendedKeyUsage names other purposes only */
		c->bad_purpose = X509_STORE_CTX_get_error(x) == X509_V_ERR_INVALID_PURPOSE && X509_STORE_CTX_get_error_depth(x) == 0;
		return 0;
	}
	X509 *leaf = X509_STORE_CTX_get0_cert(x);
	if (!leaf || !(X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE) ||
	    !(X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER)) {
		c->bad_purpose = 1;
		X509_STORE_CTX_set_error(x, X509_V_ERR_INVALID_PURPOSE);
		return 0;
	}
	return 1;
}

static CURLcode on_ssl_ctx(CURL *h, void *ctx, void *arg)
{
	(void)h;
	SSL_CTX_set_cert_verify_callback((SSL_CTX *)ctx, verify_server, arg);
	return CURLE_OK;
}

static char *abs_path(const char *p)
{
	char *r = realpath(p, NULL);
	return r ? r : strdup(p);
}

void cas_client_free(cas_client *c)
{
	if (!c)
		return;
	if (c->h)
		curl_easy_cleanup(c->h);
	free(c->cert);
	free(c->key);
	free(c->ca);
	free(c);
}

int cas_client_new(const char *authority, const cas_tls *tls, cas_client **out, char *err, size_t errlen)
{
	*out = NULL;
	pthread_once(&curl_once, curl_init);
	if (!curl_ok)
		return fs_reason(err, errlen, -EIO, "cannot initialise libcurl");
	const char *missing = !tls || !tls->cert || !*tls->cert ? "FSHIELD_TLS_CERT (--tls-cert)"
			      : !tls->key || !*tls->key		  ? "FSHIELD_TLS_KEY (--tls-key)"
			      : !tls->ca || !*tls->ca		  ? "FSHIELD_CA (--ca)"
								  : NULL;
	if (missing)
		return fs_reason(err, errlen, -EINVAL,
				 "a CAS needs a client certificate, its key and the CA of the server: %s is not set", missing);
	const char *why;
	if (fs_secret_mode_check_path(tls->key, &why) != 0)
		return fs_reason(err, errlen, -EACCES, "TLS key %s: %s", tls->key, why);
	cas_client *c = calloc(1, sizeof(*c));
	/* Absolute paths: every new connection reads the files again, also after a daemon's chdir("/"). */
	if (!c || !(c->h = curl_easy_init()) || !(c->cert = abs_path(tls->cert)) || !(c->key = abs_path(tls->key)) ||
	    !(c->ca = abs_path(tls->ca))) {
		cas_client_free(c);
		return fs_reason(err, errlen, -ENOMEM, "out of memory");
	}
	if ((size_t)snprintf(c->base, sizeof(c->base), "https://%s", authority) >= sizeof(c->base)) {
		cas_client_free(c);
		return fs_reason(err, errlen, -EINVAL, "CAS address too long");
	}
	c->timeout_ms = tls->timeout_ms > 0 ? tls->timeout_ms : CAS_DEFAULT_TIMEOUT_MS;
	*out = c;
	return 0;
}

static void take_fp(cas_client *c)
{
	struct curl_certinfo *ci = NULL;
	if (curl_easy_getinfo(c->h, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci || ci->num_of_certs < 1)
		return;
	for (struct curl_slist *s = ci->certinfo[0]; s; s = s->next)
		if (!strncmp(s->data, "Cert:", 5)) {
			uint8_t fp[32];
			if (cas_cert_key_fingerprint_pem(s->data + 5, strlen(s->data + 5), fp) == 0) {
				memcpy(c->fp, fp, 32);
				c->have_fp = 1;
			}
			return;
		}
}

int cas_client_server_fp(cas_client *c, uint8_t fp[32])
{
	if (!c->have_fp)
		return -1;
	memcpy(fp, c->fp, 32);
	return 0;
}

int cas_client_request(cas_client *c, const char *method, const char *path, const char *ctype, const char *body,
		       size_t len, long *status, char **resp, size_t *resplen, char *err, size_t errlen)
{
	char url[1024], ct[128];
	struct cas_curl_buf b = { .max = MAX_ANSWER };
	*resp = NULL;
	*resplen = 0;
	if ((size_t)snprintf(url, sizeof(url), "%s%s", c->base, path) >= sizeof(url))
		return fs_reason(err, errlen, -EINVAL, "URL too long");
	CURL *h = c->h;
	cas_curl_setup(h, url, "https", c->timeout_ms, &b);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_3);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_CAINFO, c->ca);
	curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert);
	curl_easy_setopt(h, CURLOPT_SSLKEY, c->key);
	curl_easy_setopt(h, CURLOPT_CERTINFO, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
	curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, c);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	struct curl_slist *hdr = NULL;
	if (body) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", ctype ? ctype : "application/json");
		hdr = curl_slist_append(hdr, ct);
		hdr = curl_slist_append(hdr, "Expect:");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (!body && !strcmp(method, "GET"))
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	c->bad_purpose = 0;
	CURLcode rc = curl_easy_perform(h);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdr);
	if (rc != CURLE_OK) {
		cas_curl_buf_free(&b);
		if (c->bad_purpose)
			return fs_reason(err, errlen, -EPROTO,
					 "CAS %s: the server's certificate is not a TLS server's (its extendedKeyUsage lacks "
					 "serverAuth): refusing it as the CAS; it may be a client certificate answering in the "
					 "CAS's place. Give the CAS a certificate with extendedKeyUsage serverAuth",
					 c->base + 8);
		return fs_reason(err, errlen, curl_errno(rc), "CAS %s: %s", c->base + 8,
				 b.over ? "answer too large" : curl_easy_strerror(rc));
	}
	take_fp(c);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	if (!b.p && !(b.p = calloc(1, 1)))
		return fs_reason(err, errlen, -ENOMEM, "out of memory");
	*resp = b.p;
	*resplen = b.n;
	return 0;
}
