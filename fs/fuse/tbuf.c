#include "fs/fuse/tbuf.h"

#include <pthread.h>
#include <stdlib.h>

static pthread_key_t tbuf_key;
static pthread_once_t tbuf_once = PTHREAD_ONCE_INIT;

struct tbuf {
	size_t cap;
	unsigned char data[];
};

static void tbuf_make_key(void)
{
	(void)pthread_key_create(&tbuf_key, free);
}

void *fuse_thread_buf(size_t size)
{
	pthread_once(&tbuf_once, tbuf_make_key);
	struct tbuf *b = pthread_getspecific(tbuf_key);
	if (b && b->cap >= size)
		return b->data;
	size_t cap = size < 256 * 1024 ? 256 * 1024 : size;
	struct tbuf *nb = malloc(sizeof(*nb) + cap);
	if (!nb)
		return NULL;
	nb->cap = cap;
	if (pthread_setspecific(tbuf_key, nb) != 0) {
		free(nb);
		return NULL;
	}
	free(b);
	return nb->data;
}
