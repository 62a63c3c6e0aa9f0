/* dioracer FILE BLOCKS SECONDS: races direct (O_DIRECT) writers against buffered and mmap readers of FILE
 * and checks every byte read against the writers' log. Exit 0, or 1 with the first stale or wrong read.
 *
 * FILE is BLOCKS blocks of 4096 bytes. Each 8-byte word of block b holds (b << 32 | s), s the block's
 * write sequence number. Block b belongs to one writer (b % 3): two write synchronously (pwrite), one
 * asynchronously (io_submit, several blocks in flight). Per block the log holds `done` (the highest
 * sequence whose write has returned) and `issued` (the highest submitted). A read of block b that starts
 * after done = d and ends before issued = i must find in every word a sequence in [d, i]: less is stale
 * data, more or another block number is corruption. At the end, once the writers stopped, a buffered read
 * after close and reopen must find every block at its last sequence. */
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define TOOL_NAME "dioracer"
#include "tests/tools/die.h"

#define BS 4096
#define WORDS (BS / 8)
#define BATCH 8

static const char *path;
static uint64_t nblocks;
static _Atomic uint64_t *done, *issued;
static atomic_int stop, failed;
static atomic_ulong reads_checked;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void fill(uint64_t *buf, uint64_t b, uint64_t seq)
{
	for (int i = 0; i < WORDS; i++)
		buf[i] = b << 32 | seq;
}

/* Checks one block's words as read between the snapshots lo (done, before) and hi (issued, after). */
static int check_block(const char *who, const uint64_t *w, uint64_t b, uint64_t lo, uint64_t hi)
{
	for (int i = 0; i < WORDS; i++) {
		uint64_t blk = w[i] >> 32, seq = w[i] & 0xffffffffu;
		if (blk != b || seq < lo || seq > hi) {
			if (atomic_exchange(&failed, 1) == 0)
				fprintf(stderr, "dioracer: %s: block %llu word %d: found block %llu seq %llu, expected seq in "
						"[%llu, %llu]%s\n",
					who, (unsigned long long)b, i, (unsigned long long)blk, (unsigned long long)seq,
					(unsigned long long)lo, (unsigned long long)hi,
					blk == b && seq < lo ? " (stale data)" : "");
			return -1;
		}
	}
	return 0;
}

static int direct_fd(void)
{
	int fd = open(path, O_RDWR | O_DIRECT);
	if (fd < 0)
		die(1, "open O_DIRECT %s", path);
	return fd;
}

static void *aligned_block(void)
{
	void *p;
	if (posix_memalign(&p, BS, BS * BATCH) != 0)
		die(1, "posix_memalign");
	return p;
}

struct writer {
	int id;
	unsigned seed;
};

static void *sync_writer(void *arg)
{
	struct writer *wr = arg;
	int fd = direct_fd();
	uint64_t *buf = aligned_block();
	while (!atomic_load(&stop) && !atomic_load(&failed)) {
		uint64_t b = (uint64_t)rand_r(&wr->seed) % nblocks;
		b -= b % 3;
		b += (uint64_t)wr->id;
		if (b >= nblocks)
			continue;
		uint64_t seq = atomic_load(&issued[b]) + 1;
		fill(buf, b, seq);
		atomic_store(&issued[b], seq);
		if (pwrite(fd, buf, BS, (off_t)(b * BS)) != BS)
			die(1, "direct pwrite block %llu", (unsigned long long)b);
		atomic_store(&done[b], seq);
	}
	free(buf);
	close(fd);
	return NULL;
}

/* Asynchronous direct writes through the kernel's AIO (io_submit), BATCH distinct blocks at a time. */
static void *async_writer(void *arg)
{
	struct writer *wr = arg;
	int fd = direct_fd();
	uint64_t *buf = aligned_block();
	aio_context_t ctx = 0;
	if (syscall(SYS_io_setup, BATCH, &ctx) != 0)
		die(1, "io_setup");
	while (!atomic_load(&stop) && !atomic_load(&failed)) {
		struct iocb cbs[BATCH], *cbp[BATCH];
		uint64_t blk[BATCH], seq[BATCH];
		int n = 0;
		while (n < BATCH) {
			uint64_t b = (uint64_t)rand_r(&wr->seed) % nblocks;
			b = b - b % 3 + (uint64_t)wr->id;
			if (b >= nblocks)
				continue;
			int dup = 0;
			for (int j = 0; j < n; j++)
				dup |= blk[j] == b;
			if (dup)
				break; /* one write per block in flight: their order would be undefined */
			blk[n] = b;
			seq[n] = atomic_load(&issued[b]) + 1;
			fill(buf + n * WORDS, b, seq[n]);
			memset(&cbs[n], 0, sizeof(cbs[n]));
			cbs[n].aio_fildes = (uint32_t)fd;
			cbs[n].aio_lio_opcode = IOCB_CMD_PWRITE;
			cbs[n].aio_buf = (uint64_t)(uintptr_t)(buf + n * WORDS);
			cbs[n].aio_nbytes = BS;
			cbs[n].aio_offset = (int64_t)(b * BS);
			cbs[n].aio_data = (uint64_t)n;
			cbp[n] = &cbs[n];
			atomic_store(&issued[b], seq[n]);
			n++;
		}
		if (n == 0)
			continue;
		long s = syscall(SYS_io_submit, ctx, (long)n, cbp);
		if (s != n)
			die(1, "io_submit: %ld of %d", s, n);
		struct io_event ev[BATCH];
		int got = 0;
		while (got < n) {
			long r = syscall(SYS_io_getevents, ctx, 1L, (long)(n - got), ev + got, NULL);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				die(1, "io_getevents");
			got += (int)r;
		}
		for (int j = 0; j < n; j++) {
			if (ev[j].res != BS) {
				fprintf(stderr, "dioracer: asynchronous direct write: %lld\n", (long long)ev[j].res);
				exit(1);
			}
			atomic_store(&done[blk[ev[j].data]], seq[ev[j].data]);
		}
	}
	syscall(SYS_io_destroy, ctx);
	free(buf);
	close(fd);
	return NULL;
}

/* Buffered reads of 1 to 4 blocks; reopens the file now and then (pages outlive a close). */
static void *buffered_reader(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	uint64_t *buf = malloc(4 * BS), lo[4], hi;
	int fd = -1;
	for (unsigned long k = 0; !atomic_load(&stop) && !atomic_load(&failed); k++) {
		if (fd < 0 && (fd = open(path, O_RDONLY)) < 0)
			die(1, "open %s", path);
		uint64_t b = (uint64_t)rand_r(&seed) % nblocks, n = 1 + (uint64_t)rand_r(&seed) % 4;
		if (b + n > nblocks)
			n = nblocks - b;
		for (uint64_t j = 0; j < n; j++)
			lo[j] = atomic_load(&done[b + j]);
		if (pread(fd, buf, n * BS, (off_t)(b * BS)) != (ssize_t)(n * BS))
			die(1, "pread");
		for (uint64_t j = 0; j < n; j++) {
			hi = atomic_load(&issued[b + j]);
			if (check_block("buffered read", buf + j * WORDS, b + j, lo[j], hi) != 0)
				break;
		}
		atomic_fetch_add(&reads_checked, 1);
		if (k % 64 == 63) {
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

static void *mmap_reader(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		die(1, "open %s", path);
	const uint64_t *map = mmap(NULL, nblocks * BS, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		die(1, "mmap");
	uint64_t *copy = malloc(BS);
	while (!atomic_load(&stop) && !atomic_load(&failed)) {
		uint64_t b = (uint64_t)rand_r(&seed) % nblocks;
		uint64_t lo = atomic_load(&done[b]);
		memcpy(copy, map + b * WORDS, BS);
		check_block("mmap read", copy, b, lo, atomic_load(&issued[b]));
		atomic_fetch_add(&reads_checked, 1);
	}
	munmap((void *)map, nblocks * BS);
	close(fd);
	free(copy);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 4)
		die(1, "usage: dioracer FILE BLOCKS SECONDS");
	path = argv[1];
	nblocks = strtoull(argv[2], NULL, 10);
	double secs = atof(argv[3]);
	if (nblocks < 3)
		die(1, "at least 3 blocks");
	done = calloc(nblocks, sizeof(*done));
	issued = calloc(nblocks, sizeof(*issued));

	/* Sequence 0 everywhere, written through the page cache and made durable: readers start cached. */
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die(1, "create %s", path);
	static uint64_t buf[WORDS];
	for (uint64_t b = 0; b < nblocks; b++) {
		fill(buf, b, 0);
		if (pwrite(fd, buf, BS, (off_t)(b * BS)) != BS)
			die(1, "pwrite");
	}
	if (fsync(fd) != 0)
		die(1, "fsync");
	for (uint64_t b = 0; b < nblocks; b++)
		if (pread(fd, buf, BS, (off_t)(b * BS)) != BS)
			die(1, "pread");
	close(fd);

	pthread_t w[3], r[3];
	struct writer wr[3] = { { 0, 11 }, { 1, 22 }, { 2, 33 } };
	pthread_create(&w[0], NULL, sync_writer, &wr[0]);
	pthread_create(&w[1], NULL, sync_writer, &wr[1]);
	pthread_create(&w[2], NULL, async_writer, &wr[2]);
	pthread_create(&r[0], NULL, buffered_reader, (void *)(uintptr_t)7);
	pthread_create(&r[1], NULL, buffered_reader, (void *)(uintptr_t)8);
	pthread_create(&r[2], NULL, mmap_reader, (void *)(uintptr_t)9);
	double end = now() + secs;
	while (now() < end && !atomic_load(&failed)) {
		struct timespec t = { 0, 20 * 1000 * 1000 };
		nanosleep(&t, NULL);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 3; i++) {
		pthread_join(w[i], NULL);
		pthread_join(r[i], NULL);
	}
	if (atomic_load(&failed))
		return 1;

	/* Every write has returned: each block must read back at its last sequence, through a new open. */
	fd = open(path, O_RDONLY);
	if (fd < 0)
		die(1, "open %s", path);
	uint64_t writes = 0;
	for (uint64_t b = 0; b < nblocks; b++) {
		if (pread(fd, buf, BS, (off_t)(b * BS)) != BS)
			die(1, "pread");
		uint64_t last = atomic_load(&done[b]);
		writes += last;
		if (check_block("buffered read after the writers stopped", buf, b, last, last) != 0)
			return 1;
	}
	close(fd);
	printf("dioracer: %llu direct writes, %lu reads checked\n", (unsigned long long)writes,
	       atomic_load(&reads_checked));
	return 0;
}
