#include <stdio.h>

#include "tools/keyopts.h"

int keyopts_apply(int c, const char *arg, fs_volume_opts *o)
{
	switch (c) {
	case OPT_KEY_FILE: o->key_file = arg; return 1;
	case OPT_PASSPHRASE_FILE: o->passphrase_file = arg; return 1;
	case OPT_TRUST: o->trust_uri = arg; return 1;
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
