/* Trust anchors: picks the kind from the URI and dispatches every call through its table
 * (meta/anchor/kind.h). The kinds are in meta/anchor/file.c, none.c and cas.c. */
#include "meta/anchor/anchor.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "meta/anchor/kind.h"
#include "meta/common/reason.h"

static const struct anchor_ops *const kinds[] = { &anchor_none_ops, &anchor_file_ops, &anchor_cas_ops };

const char *fs_anchor_default_uri(const char *explicit_uri)
{
	return explicit_uri && *explicit_uri ? explicit_uri : FS_DEFAULT_TRUST;
}

static const struct anchor_ops *kind_of(const char *uri)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strncmp(uri, kinds[i]->prefix, strlen(kinds[i]->prefix)))
			return kinds[i];
	return NULL;
}

int fs_anchor_open_tls(const char *uri, int create, const cas_tls *tls, fs_anchor **out, char *err, size_t errlen)
{
	const struct anchor_ops *ops = kind_of(uri);
	if (!ops)
		return anchor_unknown(uri, err, errlen);
	fs_anchor *a = calloc(1, sizeof(*a));
	if (!a || !(a->uri = strdup(uri))) {
		free(a);
		return fs_reason(err, errlen, -ENOMEM, "out of memory");
	}
	a->ops = ops;
	int rc = ops->open(a, uri + strlen(ops->prefix), create, tls, err, errlen);
	if (rc) {
		fs_anchor_close(a);
		return rc;
	}
	*out = a;
	return 0;
}

int fs_anchor_uri_check(const char *uri, char *err, size_t errlen)
{
	const struct anchor_ops *ops = kind_of(uri);
	if (!ops)
		return anchor_unknown(uri, err, errlen);
	const char *path = uri + strlen(ops->prefix);
	if (ops == &anchor_file_ops && path[0] != '/')
		return anchor_file_relative(uri, err, errlen);
	if (ops == &anchor_file_ops && !strncmp(path, "//", 2) && path[2] != '/')
		return anchor_file_host(uri, err, errlen);
	if (ops == &anchor_none_ops && strcmp(uri, ops->prefix) != 0)
		return anchor_unknown(uri, err, errlen);
	return 0;
}

int fs_anchor_open(const char *uri, int create, fs_anchor **out, char *err, size_t errlen)
{
	return fs_anchor_open_tls(uri, create, NULL, out, err, errlen);
}

void fs_anchor_close(fs_anchor *a)
{
	if (!a)
		return;
	a->ops->close(a);
	free(a->uri);
	free(a);
}

const char *fs_anchor_uri(const fs_anchor *a) { return a->uri; }
int fs_anchor_is_none(const fs_anchor *a) { return a->norollback; }
void fs_anchor_id(const fs_anchor *a, uint8_t id[16]) { memcpy(id, a->id, 16); }

int fs_anchor_describe(const fs_anchor *a, char *buf, size_t len)
{
	if (!a->ops->describe)
		return -1;
	a->ops->describe(a, buf, len);
	return 0;
}

int fs_anchor_get_key(fs_anchor *a, uint8_t key[32], char *err, size_t errlen)
{
	if (!a->ops->get_key)
		return fs_reason(err, errlen, -ENOTSUP, "trust anchor %s does not release keys", a->uri);
	return a->ops->get_key(a, key, err, errlen);
}

int fs_anchor_register(fs_anchor *a, const uint8_t volid[16], const fs_anchor_state *st, char *err, size_t errlen)
{
	return a->ops->reg(a, volid, st, err, errlen);
}

int fs_anchor_get(fs_anchor *a, const uint8_t volid[16], fs_anchor_state *out, char *err, size_t errlen)
{
	return a->ops->get(a, volid, out, err, errlen);
}

int fs_anchor_cas(fs_anchor *a, const uint8_t volid[16], const fs_anchor_state *expect,
		  const fs_anchor_state *next, fs_anchor_state *current, char *err, size_t errlen)
{
	return a->ops->cas(a, volid, expect, next, current, err, errlen);
}

int fs_anchor_lease(fs_anchor *a, const uint8_t volid[16], const uint8_t holder[16], unsigned ttl, fs_anchor_state *cur,
		    char *err, size_t errlen)
{
	return a->ops->lease ? a->ops->lease(a, volid, holder, ttl, cur, err, errlen) : 0;
}
