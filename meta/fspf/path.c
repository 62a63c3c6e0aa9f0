/* Paths of the protected tree: their order, normal form and nesting (meta/fspf/fspf.h). */
#include <string.h>

#include "meta/fspf/internal.h"

int fspf_path_cmp(const char *a, const char *b)
{
	const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
	for (;; x++, y++) {
		unsigned cx = *x == '/' ? 1 : *x ? (unsigned)*x + 1 : 0;
		unsigned cy = *y == '/' ? 1 : *y ? (unsigned)*y + 1 : 0;
		if (cx != cy)
			return cx < cy ? -1 : 1;
		if (!cx)
			return 0;
	}
}

int fspf_path_normalize(const char *in, char *out, size_t outlen)
{
	if (!in || in[0] != '/' || outlen < 2)
		return -1;
	size_t o = 0;
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *s = p;
		while (*p && *p != '/')
			p++;
		size_t len = (size_t)(p - s);
		if (len > FSPF_NAME_MAX || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
			return -1;
		if (o + 1 + len + 1 > outlen || o + 1 + len > FSPF_PATH_MAX)
			return -1;
		out[o++] = '/';
		memcpy(out + o, s, len);
		o += len;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return 0;
}

int fspf_path_under(const char *path, const char *prefix)
{
	if (!strcmp(prefix, "/"))
		return path[0] == '/';
	size_t n = strlen(prefix);
	return !strncmp(path, prefix, n) && (path[n] == '\0' || path[n] == '/');
}

int fspf_path_is_normal(const char *p, size_t len)
{
	char tmp[FSPF_PATH_MAX + 2];
	if (len == 0 || len > FSPF_PATH_MAX || memchr(p, 0, len))
		return 0;
	memcpy(tmp, p, len);
	tmp[len] = '\0';
	char norm[FSPF_PATH_MAX + 2];
	return fspf_path_normalize(tmp, norm, sizeof(norm)) == 0 && !strcmp(norm, tmp);
}
