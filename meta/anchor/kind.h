/* What each kind of trust anchor provides (meta/anchor/file.c, none.c, cas.c); meta/anchor/anchor.c picks
 * the kind from the URI and dispatches every call through its table. Each call returns 0 or -errno with
 * a reason in err, as documented in meta/anchor/anchor.h. */
#ifndef FS_ANCHOR_KIND_H
#define FS_ANCHOR_KIND_H
#include <stddef.h>

#include "meta/anchor/state.h"
#include "meta/cas/client.h"

struct anchor_ops {
	const char *prefix; /* the URI starts with it */
	/* spec: the URI after the prefix. Sets a->priv, a->id and a->norollback; on failure, close is still called. */
	int (*open)(fs_anchor *a, const char *spec, int create, const cas_tls *tls, char *err, size_t errlen);
	void (*close)(fs_anchor *a);
	/* NULL: the URI says it all. Else what identifies the anchor beyond its URI, for messages. */
	void (*describe)(const fs_anchor *a, char *buf, size_t len);
	int (*get_key)(fs_anchor *a, uint8_t key[32], char *err, size_t errlen); /* NULL: releases no key */
	int (*reg)(fs_anchor *a, const uint8_t volid[16], const fs_anchor_state *st, char *err, size_t errlen);
	int (*get)(fs_anchor *a, const uint8_t volid[16], fs_anchor_state *out, char *err, size_t errlen);
	int (*cas)(fs_anchor *a, const uint8_t volid[16], const fs_anchor_state *expect, const fs_anchor_state *next,
		   fs_anchor_state *current, char *err, size_t errlen);
	/* NULL: keeps no writer leases (none) */
	int (*lease)(fs_anchor *a, const uint8_t volid[16], const uint8_t holder[16], unsigned ttl, fs_anchor_state *cur,
		     char *err, size_t errlen);
};

struct fs_anchor {
	const struct anchor_ops *ops;
	char *uri;
	int norollback; /* no rollback protection: "none", or a CAS volume under no_rollback_protection */
	uint8_t id[16];
	void *priv;     /* the kind's own state */
};

extern const struct anchor_ops anchor_file_ops, anchor_none_ops, anchor_cas_ops;

/* Shared by the kinds (meta/anchor/kind.c). The reason and code for a URI of no known kind: -EINVAL. */
int anchor_unknown(const char *uri, char *err, size_t errlen);
/* -EINVAL: a file: trust store's path must be absolute (the directory it is relative to changes). */
int anchor_file_relative(const char *uri, char *err, size_t errlen);
/* -EINVAL: file://HOST/... names a host, which a local trust store cannot be on. */
int anchor_file_host(const char *uri, char *err, size_t errlen);
/* The reason and code of a compare-and-swap that found another state: -ESTALE. */
int anchor_stale(const fs_anchor_state *cur, const fs_anchor_state *expect, fs_anchor_state *current, char *err,
		 size_t errlen);
#endif
