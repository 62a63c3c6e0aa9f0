/* The reasons every kind of trust anchor gives alike. */
#include <errno.h>

#include "meta/anchor/kind.h"
#include "meta/common/reason.h"

int anchor_unknown(const char *uri, char *err, size_t errlen)
{
	return fs_reason(err, errlen, -EINVAL,
			 "trust anchor %s: unknown kind (use file:/ABSOLUTE/PATH, cas://HOST:PORT/NS/SESSION/VOLUME or none)",
			 uri);
}

int anchor_file_relative(const char *uri, char *err, size_t errlen)
{
	return fs_reason(err, errlen, -EINVAL, "trust anchor %s: the path of a file: trust store must be absolute "
					       "(file:/ABSOLUTE/PATH)",
			 uri);
}

int anchor_file_host(const char *uri, char *err, size_t errlen)
{
	return fs_reason(err, errlen, -EINVAL, "trust anchor %s: file URIs with a host are not supported (use file:/PATH)",
			 uri);
}

int anchor_stale(const fs_anchor_state *cur, const fs_anchor_state *expect, fs_anchor_state *current, char *err,
		 size_t errlen)
{
	if (current)
		*current = *cur;
	return fs_reason(err, errlen, -ESTALE, "trust anchor holds version %llu, not the expected %llu",
			 (unsigned long long)cur->version, (unsigned long long)expect->version);
}
