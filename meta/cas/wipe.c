/* Wiping what held a key before it is freed (meta/cas/wipe.h). */
#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>

#include "meta/cas/wipe.h"

void cas_wiping_free(void *p)
{
	if (p)
		sodium_memzero(p, malloc_usable_size(p));
	free(p);
}

static pthread_once_t wipe_once = PTHREAD_ONCE_INIT;

static void install(void)
{
	json_set_alloc_funcs(malloc, cas_wiping_free);
}

void cas_json_wipe_on_free(void)
{
	pthread_once(&wipe_once, install);
}
