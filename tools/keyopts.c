#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "meta/anchor/anchor.h"
#include "tools/keyopts.h"

int keyopts_set_tls(const char *var, const char *path)
{
	char abs[PATH_MAX], cwd[PATH_MAX];
	if (path[0] != '/' && getcwd(cwd, sizeof(cwd)) && (size_t)snprintf(abs, sizeof(abs), "%s/%s", cwd, path) < sizeof(abs))
		path = abs;
	return setenv(var, path, 1);
}

int keyopts_trust_is_cas(const char *explicit_uri)
{
	return strncmp(fs_anchor_default_uri(explicit_uri), "cas://", 6) == 0;
}

int keyopts_apply(int c, const char *arg, fs_volume_opts *o)
{
	switch (c) {
	case OPT_KEY_FILE: o->key_file = arg; return 1;
	case OPT_PASSPHRASE_FILE: o->passphrase_file = arg; return 1;
	case OPT_TRUST: o->trust_uri = arg; return 1;
	case OPT_TLS_CERT: keyopts_set_tls("FSHIELD_TLS_CERT", arg); return 1;
	case OPT_TLS_KEY: keyopts_set_tls("FSHIELD_TLS_KEY", arg); return 1;
	case OPT_CA: keyopts_set_tls("FSHIELD_CA", arg); return 1;
	default: return 0;
	}
}

void json_str(const char *s)
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
