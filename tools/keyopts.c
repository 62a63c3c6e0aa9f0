#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/keys.h"
#include "crypto/passin.h"
#include "meta/anchor/anchor.h"
#include "meta/common/status.h"
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
	/* FSHIELD_SEAL_LIMIT=N lowers the chunk seals allowed per file key, so tests can reach the bound. */
	const char *sl = getenv("FSHIELD_SEAL_LIMIT");
	if (sl && *sl)
		o->seal_limit = strtoull(sl, NULL, 10);
	/* FSHIELD_TEST_LEASE_SECONDS=N: a short writer lease, and so a short re-check interval of the anchor. */
	const char *ls = getenv("FSHIELD_TEST_LEASE_SECONDS");
	if (ls && *ls)
		o->lease_seconds = (unsigned)strtoul(ls, NULL, 10);
#endif
	o->trust_uri = keyopts_trust_uri(o->trust_uri);
	if (fs_anchor_uri_check(fs_anchor_default_uri(o->trust_uri), err, errlen) != 0)
		return FS_ST_USAGE;
	if (!keyopts_trust_is_cas(o->trust_uri)) {
		if (o->tls.creator)
			return fs_reason(err, errlen, FS_ST_USAGE, "--cas-creator is for a cas:// trust anchor");
		return 0;
	}
	from_env(&o->tls.creator, "FSHIELD_CAS_CREATOR");
	if (o->tls.creator && !*o->tls.creator)
		o->tls.creator = NULL;
	return keyopts_tls_env(&o->tls, err, errlen) != 0 ? FS_ST_USAGE : 0;
}

static const char *extpass_opt;

const char *keyopts_extpass(void)
{
	return extpass_opt;
}

int keyopts_resolve(fs_volume_opts *o, const char *extpass, int flags, keyopts_held *h, char *err, size_t errlen)
{
	const char *why = NULL;
	int n = !!o->key_file + !!o->passphrase_file + !!extpass, rc;
	if (n > 1)
		return fs_reason(err, errlen, FS_ST_USAGE, "give only one of --key-file, --passphrase-file and --extpass");
	if (o->key_file) {
		if (!(h->key = fs_key_alloc()))
			return fs_reason(err, errlen, FS_ST_IO, "out of memory");
		if ((rc = fs_key_read_file(o->key_file, h->key, &why)) != 0)
			return fs_reason(err, errlen, fs_secret_unreadable(rc) ? FS_ST_IO : FS_ST_USAGE, "key file %s: %s",
					 o->key_file, why);
		o->key = h->key;
		o->key_file = NULL;
		return 0;
	}
	if (o->passphrase_file) {
		rc = strcmp(o->passphrase_file, "-") ? fs_passphrase_read_file(o->passphrase_file, &h->pass, &h->len, &why)
						     : fs_passphrase_read_fd(0, &h->pass, &h->len, &why);
		if (rc != 0)
			return fs_reason(err, errlen, fs_secret_unreadable(rc) ? FS_ST_IO : FS_ST_USAGE, "passphrase file %s: %s",
					 strcmp(o->passphrase_file, "-") ? o->passphrase_file : "- (standard input)", why);
	} else if (extpass) {
		if (fs_pass_extpass(extpass, &h->pass, &h->len, err, errlen) != 0)
			return FS_ST_USAGE;
	} else {
		/* No key option: a cas:// anchor releases the key; elsewhere a terminal is asked. */
		if ((flags & KEYIN_NO_PROMPT) || keyopts_trust_is_cas(o->trust_uri) || !isatty(0))
			return 0;
		char prompt[4200];
		snprintf(prompt, sizeof(prompt), "%s for %s: ", flags & KEYIN_CONFIRM ? "New passphrase" : "Passphrase",
			 o->dir ? o->dir : "the volume");
		if (fs_pass_prompt(prompt, flags & KEYIN_CONFIRM, &h->pass, &h->len, err, errlen) != 0)
			return FS_ST_USAGE;
	}
	o->passphrase = h->pass;
	o->passphrase_len = h->len;
	o->passphrase_file = NULL;
	return 0;
}

void keyopts_release(keyopts_held *h)
{
	fs_key_free(h->key);
	if (h->pass)
		fs_passphrase_free(h->pass, h->len);
	*h = (keyopts_held){ 0 };
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
	case OPT_CAS_CREATOR: o->tls.creator = arg; return 1;
	case OPT_EXTPASS: extpass_opt = arg; return 1;
	default: return 0;
	}
}

int keyopts_secret_fd(keyopts_secret *s, const char *arg, const char *prog, const char *opt)
{
	char *end;
	long fd = strtol(arg, &end, 10);
	if (!*arg || *end || fd < 0 || fd > INT_MAX) {
		fprintf(stderr, "fshield %s: %s takes a file descriptor number: %s\n", prog, opt, arg);
		return -1;
	}
	s->fd = (int)fd;
	return 0;
}

int keyopts_secret_given(const keyopts_secret *s)
{
	return s->file || s->fd >= 0;
}

int keyopts_secret_read(const keyopts_secret *s, uint8_t out[32], const char *what, char *err, size_t errlen)
{
	const char *why = NULL;
	int rc = s->file ? fs_key_read_file(s->file, out, &why) : fs_key_read_fd(s->fd, out, &why);
	if (!s->file)
		close(s->fd);
	if (rc == 0)
		return 0;
	if (s->file)
		snprintf(err, errlen, "%s %s: %s", what, s->file, why);
	else
		snprintf(err, errlen, "%s %d: %s", what, s->fd, why);
	return fs_secret_unreadable(rc) ? FS_ST_IO : FS_ST_USAGE;
}

int keyopts_refuse_cmdline(const char *prog, const char *opt, const char *instead)
{
	fprintf(stderr,
		"fshield %s: %s on the command line is refused: every local user can read a command line "
		"(/proc/PID/cmdline); give it as %s\n",
		prog, opt, instead);
	return FS_ST_USAGE;
}
