/* The session snippet and the Dockerfile of 'fshield image'. The YAML is emitted by libyaml (every value
 * from the command line double-quoted, so no name can end a scalar or read as a number or a boolean);
 * the Dockerfile carries the base image only after a check of its grammar, the session name only
 * shell-quoted in a comment, and the paths only as JSON strings in comments, so no value can start a
 * line of its own. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "meta/fspf/fspf.h"
#include "tools/image_docs.h"
#include "tools/json_out.h"

static int has_control(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 1;
	return 0;
}

/* An image reference as docker reads it after FROM: [REGISTRY[:PORT]/]NAME[:TAG][@DIGEST]. */
static int base_ok(const char *b)
{
	size_t n = strlen(b);
	if (n == 0 || n > 255 || b[0] == '-' || b[0] == '.' || b[0] == ':' || b[0] == '@' || b[0] == '/')
		return 0;
	for (const char *p = b; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr("._-/:@", *p)))
			return 0;
	return 1;
}

int image_docs_check(const char *name, const char *base, const image_region *r, int n, char *err, size_t errlen)
{
	if (!*name || !utf8_valid(name) || has_control(name)) {
		snprintf(err, errlen, "--name: the session name must be UTF-8 text without control characters");
		return -1;
	}
	if (!base_ok(base)) {
		snprintf(err, errlen,
			 "--base: an image reference such as debian:bookworm-slim or registry:5000/name@sha256:... "
			 "(letters, digits and . _ - / : @, at most 255)");
		return -1;
	}
	for (int i = 0; i < n; i++)
		if (!utf8_valid(r[i].path)) {
			snprintf(err, errlen, "a protected path is not UTF-8: session.yml (YAML) carries only UTF-8 text");
			return -1;
		}
	return 0;
}

/* ---- YAML ---- */

struct out {
	char *buf;
	size_t len, cap;
	int oom;
};

static int grow(void *ctx, unsigned char *data, size_t size)
{
	struct out *o = ctx;
	if (o->len + size + 1 > o->cap) {
		size_t cap = (o->len + size + 1) * 2;
		char *b = realloc(o->buf, cap);
		if (!b) {
			o->oom = 1;
			return 0;
		}
		o->buf = b, o->cap = cap;
	}
	memcpy(o->buf + o->len, data, size);
	o->len += size;
	o->buf[o->len] = 0;
	return 1;
}

static int ev(yaml_emitter_t *e, yaml_event_t *x, int ok)
{
	return ok && yaml_emitter_emit(e, x) ? 0 : -1;
}

/* A fixed scalar (the emitter chooses its style) or a value from the command line (double-quoted). */
static int scalar(yaml_emitter_t *e, const char *s, int quoted)
{
	yaml_event_t x;
	return ev(e, &x,
		  yaml_scalar_event_initialize(&x, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), !quoted, 1,
					       quoted ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE));
}

static int pair(yaml_emitter_t *e, const char *k, const char *v, int quoted)
{
	return scalar(e, k, 0) || scalar(e, v, quoted);
}

static int map_start(yaml_emitter_t *e)
{
	yaml_event_t x;
	return ev(e, &x, yaml_mapping_start_event_initialize(&x, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE));
}

static int map_end(yaml_emitter_t *e)
{
	yaml_event_t x;
	return ev(e, &x, yaml_mapping_end_event_initialize(&x));
}

static int seq_start(yaml_emitter_t *e)
{
	yaml_event_t x;
	return ev(e, &x, yaml_sequence_start_event_initialize(&x, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE));
}

static int seq_end(yaml_emitter_t *e)
{
	yaml_event_t x;
	return ev(e, &x, yaml_sequence_end_event_initialize(&x));
}

static const char yaml_head[] =
	"# fshield session snippet for the deployment policy (written by 'fshield image').\n"
	"# It holds the fspf key: keep it in the policy, never in the image.\n"
	"# mount (bash): the key and tag reach fshield on descriptors 3 and 4, never on its command line.\n";

static const char mount_cmd[] = "fshield mount --fspf /fshield/fshield.fspf --fspf-key-fd 3 --fspf-tag-fd 4 "
				"/fshield/protected /fshield/image 3<<<\"$FSPF_KEY\" 4<<<\"$FSPF_TAG\"";

char *image_session_yaml(const char *name, const char *khex, const char *thex, const image_region *r, int n,
			 size_t *len)
{
	struct out o = { 0 };
	yaml_emitter_t e;
	yaml_event_t x;
	char *vname = malloc(strlen(name) + sizeof("-image"));
	if (!vname || !grow(&o, (unsigned char *)yaml_head, strlen(yaml_head)) || !yaml_emitter_initialize(&e)) {
		free(vname);
		free(o.buf);
		return NULL;
	}
	sprintf(vname, "%s-image", name);
	yaml_emitter_set_output(&e, grow, &o);
	yaml_emitter_set_unicode(&e, 1); /* UTF-8 names as they are; only non-printable characters escaped */
	yaml_emitter_set_width(&e, -1);	 /* no folding of long values */
	yaml_emitter_set_indent(&e, 2);
	int bad = ev(&e, &x, yaml_stream_start_event_initialize(&x, YAML_UTF8_ENCODING)) ||
		  ev(&e, &x, yaml_document_start_event_initialize(&x, NULL, NULL, NULL, 1)) || map_start(&e) ||
		  pair(&e, "name", name, 1) || scalar(&e, "fspf", 0) || map_start(&e) ||
		  pair(&e, "path", "/fshield/fshield.fspf", 0) || pair(&e, "key", khex, 1) || pair(&e, "tag", thex, 1) ||
		  map_end(&e) || scalar(&e, "volumes", 0) || seq_start(&e) || map_start(&e) || pair(&e, "name", vname, 1) ||
		  pair(&e, "root", "/fshield/protected", 0) || pair(&e, "mountpoint", "/fshield/image", 0) ||
		  pair(&e, "read_only", "true", 0) || scalar(&e, "paths", 0) || seq_start(&e);
	for (int i = 0; !bad && i < n; i++)
		bad = map_start(&e) || pair(&e, "path", r[i].path, 1) ||
		      pair(&e, "protection", fspf_kind_name(r[i].kind), 0) || map_end(&e);
	bad = bad || seq_end(&e) || pair(&e, "mount", mount_cmd, 0) || map_end(&e) || seq_end(&e) || map_end(&e) ||
	      ev(&e, &x, yaml_document_end_event_initialize(&x, 1)) || ev(&e, &x, yaml_stream_end_event_initialize(&x)) ||
	      !yaml_emitter_flush(&e) || o.oom;
	yaml_emitter_delete(&e);
	free(vname);
	if (bad) {
		if (o.buf)
			memset(o.buf, 0, o.cap);
		free(o.buf);
		return NULL;
	}
	*len = o.len;
	return o.buf;
}

/* ---- Dockerfile ---- */

/* s as one POSIX shell word: single-quoted, each ' as '\''. */
static void shell_word(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++)
		if (*s == '\'')
			fputs("'\\''", f);
		else
			fputc(*s, f);
	fputc('\'', f);
}

char *image_dockerfile(const char *name, const char *base, const image_region *r, int n)
{
	char *df = NULL;
	size_t dlen = 0;
	if (!base_ok(base) || has_control(name)) /* image_docs_check refused it already */
		return NULL;
	FILE *f = open_memstream(&df, &dlen);
	if (!f)
		return NULL;
	int bad = 0;
	fputs("# Written by 'fshield image': the protected tree and its fspf. The fspf key and tag are not in\n"
	      "# the image: they are in session.yml, for the deployment policy. BASE must not hold the\n"
	      "# plaintext of the protected paths (each a JSON string):\n",
	      f);
	for (int i = 0; i < n; i++) {
		json_t *j = json_string(r[i].path);
		char *q = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
		json_decref(j);
		bad |= !q;
		fprintf(f, "#   %s (%s)\n", q ? q : "", fspf_kind_name(r[i].kind));
		free(q);
	}
	fputs("# Build in this directory: docker build -t ", f);
	char *tag = malloc(strlen(name) + sizeof("-protected"));
	bad |= !tag;
	if (tag) {
		sprintf(tag, "%s-protected", name);
		shell_word(f, tag);
		free(tag);
	}
	fprintf(f,
		" .\n"
		"# At start, with FSPF_KEY and FSPF_TAG from the policy, the container runs\n"
		"#   fshield mount --fspf /fshield/fshield.fspf --fspf-key-fd 3 --fspf-tag-fd 4 \\\n"
		"#       /fshield/protected /fshield/image 3<<<\"$FSPF_KEY\" 4<<<\"$FSPF_TAG\"\n"
		"# (bash; a key or tag on a command line is refused: every local user could read it there)\n"
		"# and finds the protected paths below /fshield/image.\n"
		"ARG BASE=%s\n"
		"FROM ${BASE}\n"
		"COPY protected/ /fshield/protected/\n"
		"COPY fshield.fspf /fshield/fshield.fspf\n"
		"RUN mkdir -p /fshield/image\n",
		base);
	if (fclose(f) != 0 || bad) {
		free(df);
		return NULL;
	}
	return df;
}
