/* One reply buffer per FUSE worker thread, shared by the front ends: reads are up to max_read (1 MiB), and
 * a fresh allocation of that size per request would be an mmap and page faults each time. */
#ifndef FS_FUSE_TBUF_H
#define FS_FUSE_TBUF_H
#include <stddef.h>

/* At least size bytes, valid until the same thread asks again; NULL when out of memory. */
void *fuse_thread_buf(size_t size);
#endif
