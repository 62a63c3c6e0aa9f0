/* "none": the explicit opt-out of rollback protection. Nothing is kept; every change is accepted. */
#include <errno.h>

#include "meta/anchor/kind.h"
#include "meta/common/reason.h"

static int none_open(fs_anchor *a, const char *spec, int create, const cas_tls *tls, char *err, size_t errlen)
{
	(void)create;
	(void)tls;
	if (*spec) /* "none" only, not a longer word that starts with it */
		return anchor_unknown(a->uri, err, errlen);
	a->norollback = 1;
	return 0;
}

static void none_close(fs_anchor *a) { (void)a; }

static int none_register(fs_anchor *a, const uint8_t volid[16], const fs_anchor_state *st, char *err, size_t errlen)
{
	(void)a, (void)volid, (void)st, (void)err, (void)errlen;
	return 0;
}

static int none_get(fs_anchor *a, const uint8_t volid[16], fs_anchor_state *out, char *err, size_t errlen)
{
	(void)a, (void)volid, (void)out;
	return fs_reason(err, errlen, -ENOENT, "no trust anchor");
}

static int none_cas(fs_anchor *a, const uint8_t volid[16], const fs_anchor_state *expect,
		    const fs_anchor_state *next, fs_anchor_state *current, char *err, size_t errlen)
{
	(void)a, (void)volid, (void)expect, (void)next, (void)current, (void)err, (void)errlen;
	return 0;
}

const struct anchor_ops anchor_none_ops = {
	.prefix = "none",
	.open = none_open,
	.close = none_close,
	.reg = none_register,
	.get = none_get,
	.cas = none_cas,
};
