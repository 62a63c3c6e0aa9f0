#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/anchor/anchor.h"
#include "meta/common/reason.h"
#include "tools/keyopts.h"

const char *keyopts_trust_uri(const char *explicit_uri)
{
	if (explicit_uri && *explicit_uri)
		return explicit_uri;
	const char *env = getenv("FSHIELD_TRUST");
	return env && *env ? env : NULL;
}

int keyopts_trust_is_cas(const char *explicit_uri)
{
	return strncmp(fs_anchor_default_uri(keyopts_trust_uri(explicit_uri)), "cas://", 6) == 0;
}

static void from_env(const char **field, const char *var)
{
	if (!*field || !**field)
		*field = getenv(var);
}

int keyopts_tls_env(cas_tls *t, char *err, size_t errlen)
{
	from_env(&t->cert, "FSHIELD_TLS_CERT");
	from_env(&t->key, "FSHIELD_TLS_KEY");
	from_env(&t->ca, "FSHIELD_CA");
	const char *to = getenv("FSHIELD_CAS_TIMEOUT");
	if (!to || !*to)
		return 0;
	char *end;
	double s = strtod(to, &end);
	if (*end || !(s > 0) || s > 3600)
		return fs_reason(err, errlen, -EINVAL, "FSHIELD_CAS_TIMEOUT: not a number of seconds (0 < S <= 3600): %s",
				 to);
	t->timeout_ms = (long)(s * 1000);
	if (t->timeout_ms < 1)
		t->timeout_ms = 1;
	return 0;
}

int keyopts_env(fs_volume_opts *o, char *err, size_t errlen)
{
#ifdef FS_TEST_HOOKS
	/* Test builds only: FSHIELD_CRASH_AT=STEP kills the process at that step of a commit. */
	o->crash_at = getenv("FSHIELD_CRASH_AT");
	/* FSHIELD_TEST_LEASE_SECONDS=N: a short writer lease, and so a short re-check interval of the anchor. */
	const char *ls = getenv("FSHIELD_TEST_LEASE_SECONDS");
	if (ls && *ls)
		o->lease_seconds = (unsigned)strtoul(ls, NULL, 10);
#endif
	o->trust_uri = keyopts_trust_uri(o->trust_uri);
	if (!keyopts_trust_is_cas(o->trust_uri))
		return 0;
	return keyopts_tls_env(&o->tls, err, errlen);
}

int keyopts_apply(int c, const char *arg, fs_volume_opts *o)
{
	switch (c) {
	case OPT_KEY_FILE: o->key_file = arg; return 1;
	case OPT_PASSPHRASE_FILE: o->passphrase_file = arg; return 1;
	case OPT_TRUST: o->trust_uri = arg; return 1;
	case OPT_TLS_CERT: o->tls.cert = arg; return 1;
	case OPT_TLS_KEY: o->tls.key = arg; return 1;
	case OPT_CA: o->tls.ca = arg; return 1;
	default: return 0;
	}
}
