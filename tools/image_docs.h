/* The documents 'fshield image' writes beside the protected tree: the session snippet (YAML, built with
 * libyaml's emitter) and the Dockerfile (every value quoted, or refused before anything is written). */
#ifndef FS_TOOLS_IMAGE_DOCS_H
#define FS_TOOLS_IMAGE_DOCS_H
#include <stddef.h>

typedef struct {
	const char *path; /* normalized, absolute */
	int kind;	  /* FSPF_ENCRYPTED or FSPF_AUTHENTICATED */
} image_region;

/* 0 when the session name, the base image and the paths can be written into both documents; else -1
 * with the reason in err. */
int image_docs_check(const char *name, const char *base, const image_region *r, int n, char *err, size_t errlen);
/* The session snippet (malloc'd, NUL-terminated; the caller wipes it: it holds the fspf key), or NULL. */
char *image_session_yaml(const char *name, const char *khex, const char *thex, const image_region *r, int n,
			 size_t *len);
/* The Dockerfile (malloc'd, NUL-terminated), or NULL. */
char *image_dockerfile(const char *name, const char *base, const image_region *r, int n);
#endif
