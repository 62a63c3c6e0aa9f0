/* Creating, opening (with the recovery rules) and closing a volume. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <syslog.h>
#include <unistd.h>

#include "fs/volume/internal.h"
#include "meta/common/beneath.h"
#include "meta/common/reason.h"
#include "fs/volume/setup.h"


static int keys_alloc(fs_volume *v)
{
	v->keys = sodium_malloc(5 * 32);
	if (!v->keys)
		return -ENOMEM;
	v->k_master = v->keys;
	v->k_chunk = v->keys + 32;
	v->k_tree = v->keys + 64;
	v->k_name = v->keys + 96;
	v->k_row = v->keys + 128;
	return 0;
}

static int derive_all(fs_volume *v)
{
	fs_derive_subkey(v->k_chunk, v->k_master, FS_SUBKEY_CHUNK, v->hdr.volid);
	fs_derive_subkey(v->k_tree, v->k_master, FS_SUBKEY_TREE, v->hdr.volid);
	fs_derive_subkey(v->k_name, v->k_master, FS_SUBKEY_NAME, v->hdr.volid);
	fs_derive_subkey(v->k_row, v->k_master, FS_SUBKEY_ROW, v->hdr.volid);
	v->row_aead = fs_aead_new(FS_AEAD_XCHACHA20POLY1305, v->k_row);
	if (!v->row_aead)
		return -ENOMEM;
	if (fs_tree_init(&v->tree, v->k_tree, v->hdr.buckets) != 0)
		return -ENOMEM;
	v->bk = calloc(v->hdr.buckets, sizeof(*v->bk));
	v->scratch = malloc(v->hdr.chunk_size + 64);
	return v->bk && v->scratch ? 0 : -ENOMEM;
}

/* Releases everything of v except the lock file and v itself. */
static void teardown(fs_volume *v)
{
	if (v->bk) {
		for (uint32_t b = 0; b < v->hdr.buckets; b++)
			while (v->bk[b].head) {
				struct inode *n = v->bk[b].head->bnext;
				vol_free_inode(v, v->bk[b].head);
				v->bk[b].head = n;
			}
		free(v->bk);
		v->bk = NULL;
	}
	if (v->tree.node)
		fs_tree_free(&v->tree);
	fs_aead_free(v->row_aead);
	v->row_aead = NULL;
	fs_store_close(v->store);
	v->store = NULL;
	vol_lease_release(v);
	fs_anchor_close(v->anchor);
	v->anchor = NULL;
	sodium_free(v->keys);
	v->keys = NULL;
	free(v->scratch);
	v->scratch = NULL;
	free(v->dead);
	free(v->rm_inodes);
	v->dead = NULL;
	v->rm_inodes = NULL;
	if (v->dirfd >= 0)
		close(v->dirfd);
	v->dirfd = -1;
	free(v->dir);
	v->dir = NULL;
}

void vol_destroy(fs_volume *v)
{
	if (!v)
		return;
	teardown(v);
	if (v->lockfd >= 0)
		close(v->lockfd);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

fs_volume *vol_new(void)
{
	fs_volume *v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->dirfd = v->lockfd = -1;
	v->max_fds = vol_pack_fd_budget();
	pthread_mutex_init(&v->lock, NULL);
	return v;
}

/* With no key option and a cas:// trust anchor, the CAS releases the key: the anchor is opened here,
 * before the header is authenticated, and kept for the rest of the open. */
static int key_from_anchor(fs_volume *v, const char *uri, const cas_tls *tls, int creating, char *err, size_t errlen)
{
	char aerr[256];
	if (!v->anchor && fs_anchor_open_tls(uri, creating, tls, &v->anchor, aerr, sizeof(aerr)) != 0)
		return fs_reason(err, errlen, FS_ST_ANCHOR, "trust anchor unavailable: %s", aerr);
	if (fs_anchor_get_key(v->anchor, v->k_master, aerr, sizeof(aerr)) != 0)
		return fs_reason(err, errlen, FS_ST_ANCHOR, "trust anchor: %s", aerr);
	if (creating)
		v->hdr.key_source = FS_KEYSRC_RAW;
	else if (v->hdr.key_source != FS_KEYSRC_RAW)
		return fs_reason(err, errlen, FS_ST_WRONG_KEY, "this volume is protected by a passphrase, not a key the CAS releases");
	return 0;
}

/* A key given as a file or as bytes opens a raw-key volume (it is the master key) or a key-file-wrapped
 * one (it unwraps the master key, docs/FORMAT.md 3.2). */
static int master_from_key(fs_volume *v, const fs_volume_opts *o, int creating, char *err, size_t errlen)
{
	const char *why = NULL;
	uint8_t *k = fs_key_alloc();
	if (!k)
		return fs_reason(err, errlen, FS_ST_IO, "out of memory");
	int st = 0, rc;
	if (o->key)
		memcpy(k, o->key, 32);
	else if ((rc = fs_key_read_file(o->key_file, k, &why)) != 0)
		st = fs_reason(err, errlen, fs_secret_unreadable(rc) ? FS_ST_IO : FS_ST_USAGE, "key file %s: %s", o->key_file, why);
	if (st) {
	} else if (creating & VOL_KEEP_MASTER) {
		/* A new key file for an existing master key: it wraps the key (a raw key would change it). */
		uint8_t *kek = fs_key_alloc();
		if (!kek) {
			st = fs_reason(err, errlen, FS_ST_IO, "out of memory");
		} else {
			v->hdr.key_source = FS_KEYSRC_KEYFILE;
			memset(&v->hdr.kdf, 0, sizeof(v->hdr.kdf));
			fs_keyfile_kek(kek, k, v->hdr.volid);
			fs_key_wrap(v->hdr.wrapped, kek, v->k_master, v->hdr.volid);
			fs_key_free(kek);
		}
	} else if (creating) {
		v->hdr.key_source = FS_KEYSRC_RAW;
		memcpy(v->k_master, k, 32);
	} else if (v->hdr.key_source == FS_KEYSRC_RAW) {
		memcpy(v->k_master, k, 32);
	} else if (v->hdr.key_source == FS_KEYSRC_KEYFILE) {
		uint8_t *kek = fs_key_alloc();
		if (!kek)
			st = fs_reason(err, errlen, FS_ST_IO, "out of memory");
		else {
			fs_keyfile_kek(kek, k, v->hdr.volid);
			if (fs_key_unwrap(v->k_master, kek, v->hdr.wrapped, v->hdr.volid) != 0)
				st = fs_reason(err, errlen, FS_ST_WRONG_KEY, "wrong key: this key file does not open the volume "
									 "in %s (or the wrapped key in the header was changed)",
					       o->dir);
			fs_key_free(kek);
		}
	} else {
		st = fs_reason(err, errlen, FS_ST_WRONG_KEY, "this volume is protected by a passphrase, not a key file");
	}
	fs_key_free(k);
	return st;
}

/* The master key from the options: key file, raw key, or passphrase (unwrapped with the header's
 * parameters; at init a random master key is wrapped instead); with none of them, from a cas:// anchor. */
int vol_get_master(fs_volume *v, const fs_volume_opts *o, int creating, char *err, size_t errlen)
{
	const char *why = NULL;
	int n = !!o->key_file + !!o->passphrase_file + !!o->key + !!o->passphrase;
	const char *uri = fs_anchor_default_uri(o->trust_uri);
	if (n == 0 && strncmp(uri, "cas://", 6) == 0)
		return key_from_anchor(v, uri, &o->tls, creating, err, errlen);
	if (n != 1)
		return fs_reason(err, errlen, FS_ST_USAGE, n ? "give only one of a key file, a passphrase file or a key"
					  : "a key is needed: --key-file F, --passphrase-file F or --extpass CMD, or run on "
					    "a terminal to be asked for the passphrase (or a cas:// trust anchor that releases it)");
	if (o->key || o->key_file)
		return master_from_key(v, o, creating, err, errlen);
	char *pass = NULL;
	size_t plen = o->passphrase_len;
	int prc = o->passphrase ? 0 : fs_passphrase_read_file(o->passphrase_file, &pass, &plen, &why);
	if (prc)
		return fs_reason(err, errlen, fs_secret_unreadable(prc) ? FS_ST_IO : FS_ST_USAGE, "passphrase file %s: %s",
				 o->passphrase_file, why);
	const char *pw = o->passphrase ? o->passphrase : pass;
	int st = 0;
	uint8_t *kek = NULL;
	if (!creating && v->hdr.key_source != FS_KEYSRC_PASSPHRASE) {
		st = fs_reason(err, errlen, FS_ST_WRONG_KEY, "this volume is protected by a key file, not a passphrase");
		goto out;
	}
	if (!(kek = fs_key_alloc())) {
		st = fs_reason(err, errlen, FS_ST_IO, "out of memory");
		goto out;
	}
	if (creating) {
		v->hdr.key_source = FS_KEYSRC_PASSPHRASE;
		fs_kdf_params_default(&v->hdr.kdf);
		if (o->kdf_ops)
			v->hdr.kdf.opslimit = o->kdf_ops;
		if (o->kdf_mem)
			v->hdr.kdf.memlimit = o->kdf_mem;
		if (!(creating & VOL_KEEP_MASTER))
			randombytes_buf(v->k_master, 32);
	}
	if (creating && !fs_kdf_params_ok(&v->hdr.kdf))
		st = fs_reason(err, errlen, FS_ST_USAGE, "Argon2id cost out of bounds (opslimit %d to %d, memlimit %d bytes "
			       "to 1 GiB, opslimit x memlimit at most 4 GiB)", FS_KDF_OPSLIMIT_MIN, FS_KDF_OPSLIMIT_MAX,
			       FS_KDF_MEMLIMIT_MIN);
	else if (fs_passphrase_kek(kek, pw, plen, &v->hdr.kdf) != 0)
		st = fs_reason(err, errlen, creating ? FS_ST_IO : FS_ST_TAMPER, "cannot derive the passphrase key (Argon2id parameters %s)",
			 creating ? "need more memory than available" : "in the header are out of range");
	else if (creating)
		fs_key_wrap(v->hdr.wrapped, kek, v->k_master, v->hdr.volid);
	else if (fs_key_unwrap(v->k_master, kek, v->hdr.wrapped, v->hdr.volid) != 0)
		st = fs_reason(err, errlen, FS_ST_WRONG_KEY, "wrong passphrase (or the wrapped key in the header was changed)");
out:
	fs_key_free(kek);
	if (pass)
		fs_passphrase_free(pass, plen);
	return st;
}

static int pow2(uint32_t x)
{
	return x && !(x & (x - 1));
}

static int dir_is_empty(int dirfd)
{
	int fd = dup(dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	struct dirent *e;
	int empty = 1;
	while ((e = readdir(d)))
		/* A freshly formatted ext4 volume has lost+found; it is left alone. */
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "lost+found"))
			empty = 0;
	closedir(d);
	return empty;
}

static void remove_created(int dirfd)
{
	static const char *const names[] = { FS_HDR_NAME, FS_HDR_NAME ".tmp", FS_META_NAME, FS_META_NAME "-wal",
					      FS_META_NAME "-shm", FS_META_NAME "-journal", FS_LOCK_NAME, FS_INIT_MARK,
					      FS_ANCHOR_RECORD, FS_ANCHOR_RECORD ".tmp" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		fs_beneath_unlink(dirfd, names[i], 0);
	fs_beneath_unlink(dirfd, FS_DATA_DIR, AT_REMOVEDIR);
	fsync(dirfd);
}

int fsv_create(const fs_volume_opts *o, char *err, size_t errlen)
{
	uint32_t cs = o->chunk_size ? o->chunk_size : FS_DEFAULT_CHUNK;
	uint32_t nb = o->buckets ? o->buckets : FS_DEFAULT_BUCKETS;
	int alg = o->aead_alg ? o->aead_alg : fs_aead_default_alg();
	if (!pow2(cs) || cs < FS_MIN_CHUNK || cs > FS_MAX_CHUNK)
		return fs_reason(err, errlen, FS_ST_USAGE, "chunk size must be a power of two from 4096 to 1048576, not %u", cs);
	if (!pow2(nb) || nb > (1u << 20))
		return fs_reason(err, errlen, FS_ST_USAGE, "bucket count must be a power of two up to 1048576");
	if (!fs_aead_alg_valid(alg))
		return fs_reason(err, errlen, FS_ST_USAGE, "unknown cipher");
	fs_volume *v = vol_new();
	if (!v || keys_alloc(v) != 0) {
		vol_destroy(v);
		return fs_reason(err, errlen, FS_ST_IO, "out of memory");
	}
	int st = 0, made = 0, rc;
	v->dirfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (v->dirfd < 0) {
		st = fs_reason(err, errlen, FS_ST_IO, "%s: %s", o->dir, strerror(errno));
		goto out;
	}
	int empty = dir_is_empty(v->dirfd);
	if (empty <= 0) {
		st = empty < 0 ? fs_reason(err, errlen, FS_ST_IO, "%s: %s", o->dir, strerror(-empty))
			       : fs_reason(err, errlen, FS_ST_IO, "%s is not empty: a volume is created only in an empty directory", o->dir);
		goto out;
	}
	v->hdr.format_version = FS_FORMAT_VERSION;
	randombytes_buf(v->hdr.volid, FS_VOLID_BYTES);
	v->hdr.aead_alg = (uint8_t)alg;
	v->hdr.hash_alg = FS_HASH_BLAKE2B_256;
	v->hdr.chunk_size = cs;
	v->hdr.buckets = nb;
	if ((st = vol_get_master(v, o, 1, err, errlen)) != 0)
		goto out;
	const char *uri = fs_anchor_default_uri(o->trust_uri);
	char aerr[256];
	if ((st = vol_trust_outside(v->dirfd, o->dir, uri, err, errlen)) != 0)
		goto out;
	if (!v->anchor && fs_anchor_open_tls(uri, 1, &o->tls, &v->anchor, aerr, sizeof(aerr)) != 0) {
		st = fs_reason(err, errlen, FS_ST_ANCHOR, "%s", aerr);
		goto out;
	}
	fs_anchor_id(v->anchor, v->hdr.anchor_id);
	/* The protection level is pinned here, under the header MAC: an anchor that later offers less is refused. */
	v->hdr.protection = fs_anchor_is_none(v->anchor) ? FS_HDR_NO_ROLLBACK_PROTECTION : 0;
	if (derive_all(v) != 0) {
		st = fs_reason(err, errlen, FS_ST_IO, "out of memory");
		goto out;
	}

	/* Version 0: an empty root directory. */
	struct inode *root = calloc(1, sizeof(*root));
	if (!root) {
		st = fs_reason(err, errlen, FS_ST_IO, "out of memory");
		goto out;
	}
	root->ino = FS_ROOT_INO;
	root->fd = -1;
	root->loaded = 1;
	root->r = (fs_inode_rec){ .ino = FS_ROOT_INO, .gen = 0, .parent = FS_ROOT_INO, .mode = S_IFDIR | 0755,
				  .uid = getuid(), .gid = getgid(), .nlink = 2 };
	root->r.target = calloc(1, 1);
	root->r.xattrs = calloc(1, 1);
	v->bk[FS_ROOT_INO & (nb - 1)].head = root;
	vol_touch(v, root, VOL_MTIME | VOL_CTIME | VOL_ATIME);
	made = 1;
	int mark = fs_beneath_open(v->dirfd, FS_INIT_MARK, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (mark < 0 || fsync(mark) != 0 || fsync(v->dirfd) != 0) {
		st = fs_reason(err, errlen, FS_ST_IO, "%s/%s: %s", o->dir, FS_INIT_MARK, strerror(mark < 0 ? -mark : errno));
		if (mark >= 0)
			close(mark);
		goto out;
	}
	close(mark);
	if ((rc = fs_beneath_mkdir(v->dirfd, FS_DATA_DIR, 0700)) != 0) {
		st = fs_reason(err, errlen, FS_ST_IO, "%s/%s: %s", o->dir, FS_DATA_DIR, strerror(-rc));
		goto out;
	}
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", o->dir, FS_META_NAME);
	rc = fs_store_create(v->dirfd, &v->store);
	/* Every bucket is known (empty) in a new volume. */
	for (uint32_t b = 0; b < nb; b++)
		v->bk[b].loaded = 1;
	/* Seal and store version 0 directly (there is no anchor state to move from yet); every bucket
	 * gets its row, so the store always holds all leaves of the tree. */
	if (!rc) {
		fs_volume_row row = { .version = 0, .state = FS_STATE_COMMITTED };
		uint8_t top[32], d[32];
		size_t ptlen, rowlen;
		vol_dir_digest(v, root, root->r.content);
		uint8_t *pt = fs_inode_encode(&root->r, &ptlen), key[8];
		fs_inode_key(key, FS_ROOT_INO);
		root->row = pt ? fs_row_seal(v->row_aead, v->hdr.volid, FS_ROW_INODE, key, 8, pt, ptlen, &rowlen) : NULL;
		free(pt);
		if (!root->row) {
			rc = -ENOMEM;
		} else {
			root->rowlen = rowlen;
			fs_leaf_inode(root->leaf, v->k_tree, FS_ROOT_INO, root->row, rowlen);
			rc = fs_store_begin(v->store);
			for (uint32_t b = 0; b < nb && !rc; b++) {
				vol_bucket_digest(v, b, d);
				fs_tree_set_bucket(&v->tree, b, d);
				rc = fs_store_put_bucket(v->store, b, d);
			}
			if (!rc)
				rc = fs_store_put_inode(v->store, FS_ROOT_INO, FS_ROOT_INO & (nb - 1), root->row, rowlen);
			fs_tree_top(&v->tree, top);
			fs_volume_root(row.root, v->k_tree, v->hdr.volid, 0, top);
			if (!rc)
				rc = fs_store_put_volume(v->store, &row);
			rc = rc ? (fs_store_rollback(v->store), rc) : fs_store_commit(v->store);
			memcpy(v->root, row.root, 32);
		}
	}
	if (rc) {
		st = fs_reason(err, errlen, FS_ST_IO, "%s: %s (%s)", path, strerror(-rc), fs_store_errmsg(v->store));
		goto out;
	}
	uint8_t hdr[FS_HDR_BYTES];
	fs_header_encode(&v->hdr, v->k_master, hdr);
	if ((rc = vol_write_file_durably(v->dirfd, FS_HDR_NAME, hdr, sizeof(hdr))) != 0) {
		st = fs_reason(err, errlen, FS_ST_IO, "%s/%s: %s", o->dir, FS_HDR_NAME, strerror(-rc));
		goto out;
	}
	if ((rc = vol_anchor_record_write(v->dirfd, fs_anchor_uri(v->anchor))) != 0) {
		st = fs_reason(err, errlen, FS_ST_IO, "%s/%s: %s", o->dir, FS_ANCHOR_RECORD, strerror(-rc));
		goto out;
	}
	fs_anchor_state as = { 0, { 0 } };
	memcpy(as.root, v->root, 32);
	if (fs_anchor_register(v->anchor, v->hdr.volid, &as, aerr, sizeof(aerr)) != 0) {
		st = fs_reason(err, errlen, FS_ST_ANCHOR, "%s", aerr);
		goto out;
	}
	if ((rc = fs_beneath_unlink(v->dirfd, FS_INIT_MARK, 0)) != 0 || fsync(v->dirfd) != 0) {
		st = fs_reason(err, errlen, FS_ST_IO, "%s/%s: %s", o->dir, FS_INIT_MARK, strerror(rc ? -rc : errno));
		goto out;
	}
	if (fs_anchor_is_none(v->anchor))
		fs_log(LOG_WARNING, "volume created without a trust anchor: rollback of the whole volume will "
				    "not be detected");
out:
	if (st && made && v->dirfd >= 0) {
		fs_store_close(v->store);
		v->store = NULL;
		remove_created(v->dirfd);
	}
	vol_destroy(v);
	return st;
}

static int interrupted(const char *dir, char *err, size_t errlen)
{
	return fs_reason(err, errlen, FS_ST_IO, "the creation of the volume in %s was interrupted: empty the directory and run "
			 "init again", dir);
}

int vol_check_init_mark(fs_volume *v, const fs_volume_opts *o, char *err, size_t errlen)
{
	if (!v->init_mark)
		return 0;
	int st = vol_open_anchor(v, o->trust_uri, &o->tls, err, errlen);
	if (st)
		return st;
	fs_anchor_state as;
	char aerr[256];
	int rc = fs_anchor_get(v->anchor, v->hdr.volid, &as, aerr, sizeof(aerr));
	if (rc == -ENOENT)
		return interrupted(o->dir, err, errlen);
	if (rc)
		return fs_reason(err, errlen, FS_ST_ANCHOR, "trust anchor: %s", aerr);
	v->init_mark = VOL_MARK_STRAY; /* registered: init got past its last step but one */
	return 0;
}

int vol_setup(fs_volume *v, const fs_volume_opts *o, int flags, char *err, size_t errlen)
{
	v->dir = strdup(o->dir);
	v->dirfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!v->dir || v->dirfd < 0)
		return fs_reason(err, errlen, FS_ST_IO, "%s: %s", o->dir, strerror(errno));
	if (keys_alloc(v) != 0)
		return fs_reason(err, errlen, FS_ST_IO, "out of memory");
	/* The marker is anyone's to plant: it is believed only once the anchor is asked (vol_check_init_mark).
	 * Without a header there is no volume id to ask about, and init writes the header before it registers. */
	struct stat mst;
	v->init_mark = fs_beneath_stat(v->dirfd, FS_INIT_MARK, &mst) == 0;
	uint8_t raw[FS_HDR_BYTES + 1];
	int fd = fs_beneath_open(v->dirfd, FS_HDR_NAME, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
	if (fd == -ELOOP)
		return fs_reason(err, errlen, FS_ST_TAMPER, "tamper detected: the volume header %s/%s is a symbolic link", o->dir,
				 FS_HDR_NAME);
	if (fd < 0) {
		int e = -fd;
		if (e == ENOENT && v->init_mark)
			return interrupted(o->dir, err, errlen);
		if (e == ENOENT && fs_beneath_stat(v->dirfd, FS_META_NAME, &mst) == 0)
			return fs_reason(err, errlen, FS_ST_TAMPER, "tamper detected: the volume header %s/%s is missing", o->dir, FS_HDR_NAME);
		/* Only a missing header means "not a volume"; a header that cannot be read (permission denied, an
		 * I/O error) is reported as what it is. */
		if (e != ENOENT)
			return fs_reason(err, errlen, FS_ST_IO, "cannot read the volume header %s/%s: %s", o->dir, FS_HDR_NAME,
					 strerror(e));
		return fs_reason(err, errlen, FS_ST_IO, "%s is not an fshield volume: %s/%s: %s", o->dir, o->dir, FS_HDR_NAME, strerror(e));
	}
	ssize_t n = read(fd, raw, sizeof(raw));
	int e = errno;
	close(fd);
	if (n < 0)
		return fs_reason(err, errlen, FS_ST_IO, "%s/%s: %s", o->dir, FS_HDR_NAME, strerror(e));
	char why[200];
	if (fs_header_parse(raw, (size_t)n, &v->hdr, why, sizeof(why)) != 0)
		return fs_reason(err, errlen, FS_ST_TAMPER, "tamper detected: %s", why);
	if (flags & VOL_SETUP_HEADER_ONLY)
		return 0;
	int st = vol_get_master(v, o, 0, err, errlen);
	if (st)
		return st;
	switch (fs_header_authenticate(raw, &v->hdr, v->k_master)) {
	case FS_HDR_AUTH_WRONG_KEY:
		return fs_reason(err, errlen, FS_ST_WRONG_KEY, "wrong key: this key does not open the volume in %s", o->dir);
	case FS_HDR_AUTH_TAMPERED:
		return fs_reason(err, errlen, FS_ST_TAMPER, "tamper detected: the volume header fails authentication");
	}
	if (derive_all(v) != 0)
		return fs_reason(err, errlen, FS_ST_IO, "out of memory");
	v->seal_limit = vol_seal_limit(v, o); /* every opened volume: no path seals without the bound */
	return 0;
}

int vol_open_anchor(fs_volume *v, const char *trust_uri, const cas_tls *tls, char *err, size_t errlen)
{
	const char *uri = fs_anchor_default_uri(trust_uri);
	char aerr[256];
	char bound[FS_ANCHOR_URI_MAX + 64], bid[33], gid[33];
	int st = vol_trust_outside(v->dirfd, v->dir, uri, err, errlen);
	if (st)
		return st;
	uint8_t id[16], zero[16] = { 0 };
	fs_hex(bid, v->hdr.anchor_id, 16);
	if (fsv_bound_anchor_uri(v->dir, bound, FS_ANCHOR_URI_MAX) != 0)
		strcpy(bound, "(URI not recorded)");
	if (!v->anchor && fs_anchor_open_tls(uri, 0, tls, &v->anchor, aerr, sizeof(aerr)) != 0)
		return fs_reason(err, errlen, FS_ST_ANCHOR, "trust anchor unavailable: %s (the volume is bound to %s, anchor id "
							    "%s; if that anchor is lost for good, see fshield trust adopt)",
				 aerr, bound, bid);
	fs_anchor_id(v->anchor, id);
	fs_hex(gid, id, 16);
	if (!fs_ct_eq(id, v->hdr.anchor_id, 16)) {
		if (fs_ct_eq(v->hdr.anchor_id, zero, 16))
			return fs_reason(err, errlen, FS_ST_ANCHOR, "this volume was created without a trust anchor; open it with --trust none");
		if (fs_anchor_is_none(v->anchor))
			return fs_reason(err, errlen, FS_ST_ANCHOR, "this volume is bound to a trust anchor (%s, anchor id %s); refusing to open it without one",
					 bound, bid);
		char who[400] = "";
		int described = fs_anchor_describe(v->anchor, who, sizeof(who)) == 0;
		return fs_reason(err, errlen, FS_ST_ANCHOR, "wrong trust anchor: this volume is bound to %s (anchor id %s), not to the "
							    "given %s (anchor id %s)%s%s%s; if the bound anchor is lost for good, see fshield trust adopt",
				 bound, bid, uri, gid, described ? " (" : "", who, described ? ")" : "");
	}
	/* A volume created with rollback protection keeps it: an anchor that no longer checks freshness (a CAS
	 * session changed to no_rollback_protection) would let any old snapshot be served. (An all-zero anchor
	 * id is the anchor none, before the flag existed.) */
	if (fs_anchor_is_none(v->anchor) && !(v->hdr.protection & FS_HDR_NO_ROLLBACK_PROTECTION) &&
	    !fs_ct_eq(v->hdr.anchor_id, zero, 16))
		return fs_reason(err, errlen, FS_ST_ANCHOR,
				 "protection downgraded: this volume was created with rollback protection, but trust anchor "
				 "%s now offers none (update_policy no_rollback_protection); refusing to open it. Set the "
				 "volume's update_policy back to rollback_protected",
				 uri);
	return 0;
}

/* Reads the volume row and bucket digests and checks them against each other: 0, or a status. */
int vol_check_store(fs_volume *v, fs_volume_row *row, char *err, size_t errlen)
{
	int rc = fs_store_get_volume(v->store, row);
	if (rc == -ENOENT || rc == -EBADMSG)
		return fs_reason(err, errlen, FS_ST_TAMPER, "tamper detected: the volume row of the metadata store is %s",
			   rc == -ENOENT ? "missing" : "malformed");
	if (rc)
		return fs_reason(err, errlen, rc == -EBUSY ? FS_ST_BUSY : FS_ST_TAMPER, "metadata store: %s", fs_store_errmsg(v->store));
	uint8_t (*d)[32] = malloc((size_t)v->hdr.buckets * 32);
	if (!d)
		return fs_reason(err, errlen, FS_ST_IO, "out of memory");
	rc = fs_store_get_buckets(v->store, v->hdr.buckets, d);
	if (rc) {
		free(d);
		return rc == -EBADMSG ? fs_reason(err, errlen, FS_ST_TAMPER, "tamper detected: bucket rows of the metadata store are "
							  "missing or malformed")
				      : fs_reason(err, errlen, FS_ST_TAMPER, "metadata store: %s", fs_store_errmsg(v->store));
	}
	for (uint32_t b = 0; b < v->hdr.buckets; b++)
		fs_tree_set_bucket(&v->tree, b, d[b]);
	free(d);
	uint8_t top[32], root[32];
	fs_tree_top(&v->tree, top);
	fs_volume_root(root, v->k_tree, v->hdr.volid, row->version, top);
	if (!fs_ct_eq(root, row->root, 32))
		return fs_reason(err, errlen, FS_ST_TAMPER, "tamper detected: the metadata store does not match its recorded root "
					 "(version %llu)",
			   (unsigned long long)row->version);
	return 0;
}

/* The recovery rules. Returns 0 (*roll_forward set when the prepared state must be acknowledged) or a
 * status with its reason. */
int vol_check_anchor(fs_volume *v, const fs_volume_row *row, int *roll_forward, int *pending, char *err,
		     size_t errlen)
{
	*roll_forward = *pending = 0;
	if (fs_anchor_is_none(v->anchor)) {
		*pending = row->state == FS_STATE_PREPARED;
		return 0;
	}
	fs_anchor_state a;
	char aerr[256];
	int rc = fs_anchor_get(v->anchor, v->hdr.volid, &a, aerr, sizeof(aerr));
	if (rc)
		return fs_reason(err, errlen, FS_ST_ANCHOR, "trust anchor: %s", aerr);
	unsigned long long V = row->version, T = a.version;
	if (row->version == a.version && fs_ct_eq(row->root, a.root, 32)) {
		*pending = row->state == FS_STATE_PREPARED; /* acknowledged; only the mark is missing */
		return 0;
	}
	if (row->state == FS_STATE_PREPARED && row->version == a.version + 1 && fs_ct_eq(row->parent, a.root, 32)) {
		*roll_forward = *pending = 1;
		return 0;
	}
	if (row->version < a.version)
		return fs_reason(err, errlen, FS_ST_ROLLBACK, FS_MSG_ROLLBACK, V, T);
	if (row->version == a.version)
		return fs_reason(err, errlen, FS_ST_FORK, "fork detected: volume version %llu has another root than the trusted one", V);
	return fs_reason(err, errlen, FS_ST_FORK, "fork detected: volume version %llu is not a successor of trusted version %llu", V, T);
}

/* A marker beside a volume the anchor records and whose store verified: left by a crash between the
 * registration and its removal, or planted. Either way the volume is whole; a writer removes it. */
static void drop_stray_mark(fs_volume *v)
{
	if (vol_readonly(v)) {
		fs_log(LOG_WARNING, "%s/%s is present, but the trust anchor records this volume: the marker is ignored",
		       v->dir, FS_INIT_MARK);
		return;
	}
	if (unlinkat(v->dirfd, FS_INIT_MARK, 0) == 0 && fsync(v->dirfd) == 0)
		fs_log(LOG_WARNING, "%s/%s was present, but the trust anchor records this volume: marker removed",
		       v->dir, FS_INIT_MARK);
}

int fsv_open(const fs_volume_opts *o, fs_volume **out, char *err, size_t errlen)
{
	fs_volume *v = vol_new();
	if (!v)
		return fs_reason(err, errlen, FS_ST_IO, "out of memory");
	v->state = o->readonly ? VOL_READONLY : VOL_CLEAN;
	v->dirty_limit = o->dirty_limit ? o->dirty_limit : 64u << 20;
	v->crash_at = o->crash_at;
	int st = vol_setup(v, o, 0, err, errlen);
	if (!st)
		st = vol_open_anchor(v, o->trust_uri, &o->tls, err, errlen);
	if (!st)
		st = vol_check_init_mark(v, o, err, errlen);
	if (st)
		goto fail;
	if (!vol_readonly(v)) {
		if ((st = vol_lock_writer(v, "the volume in %s is open by another writer", err, errlen)) != 0)
			goto fail;
		/* A copy of the backing directory elsewhere shares no lock file: the anchor's lease stops it. */
		if ((st = vol_lease_take(v, o->lease_seconds, err, errlen)) != 0)
			goto fail;
	} else {
		v->lease_ttl = o->lease_seconds ? o->lease_seconds : FS_LEASE_SECONDS;
	}
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", o->dir, FS_META_NAME);
	struct stat mst;
	if (fs_beneath_stat(v->dirfd, FS_META_NAME, &mst) != 0) {
		st = fs_reason(err, errlen, FS_ST_TAMPER, "tamper detected: the metadata store %s is missing", path);
		goto fail;
	}
	int rc = fs_store_open(v->dirfd, vol_readonly(v), &v->store);
	if (rc) {
		st = fs_reason(err, errlen, rc == -EBADMSG || rc == -EIO ? FS_ST_TAMPER : FS_ST_IO, "%s: %s", path,
			 fs_store_errmsg(v->store));
		goto fail;
	}
	fs_volume_row row;
	int roll = 0, pending = 0;
	if ((st = vol_check_store(v, &row, err, errlen)) != 0 ||
	    (st = vol_check_anchor(v, &row, &roll, &pending, err, errlen)) != 0)
		goto fail;
	v->version = row.version;
	memcpy(v->root, row.root, 32);
	if (fs_anchor_is_none(v->anchor))
		fs_log(LOG_WARNING, "volume %s has no trust anchor: a rollback of the whole volume is not detected",
		       o->dir);
	if (roll && vol_readonly(v)) {
		/* Serving a state the anchor has not acknowledged would need a write to complete it. */
		st = fs_reason(err, errlen, FS_ST_PENDING, "pending commit: version %llu is prepared but not acknowledged by the trust "
					"anchor; open the volume read-write once to complete it",
			 (unsigned long long)row.version);
		goto fail;
	}
	if (pending && !vol_readonly(v)) {
		v->state = VOL_PREPARED;
		v->pending_row = row;
		if (!roll) {
			fs_store_set_state(v->store, FS_STATE_COMMITTED);
			v->state = VOL_CLEAN;
		} else {
			int cr;
			fs_log(LOG_NOTICE, "rolling forward prepared version %llu", (unsigned long long)row.version);
			pthread_mutex_lock(&v->lock);
			cr = vol_commit_locked(v);
			pthread_mutex_unlock(&v->lock);
			if (cr) {
				st = fs_reason(err, errlen, vol_failed(v) ? FS_ST_FORK : FS_ST_ANCHOR,
					 "cannot complete the prepared commit of version %llu at the trust anchor",
					 (unsigned long long)row.version);
				goto fail;
			}
		}
	}
	if (!vol_readonly(v) && !vol_prepared(v))
		vol_collect_garbage(v);
	/* The root must be there and verify. */
	int e = 0;
	struct inode *root = vol_iget(v, FS_ROOT_INO, &e);
	if (!root || !S_ISDIR(root->r.mode)) {
		st = fs_reason(err, errlen, FS_ST_TAMPER, "tamper detected: the root directory's row is missing or fails verification");
		goto fail;
	}
	/* Only now, with the tree verified against the anchor, may anything be removed. */
	if (!vol_readonly(v) && !vol_prepared(v) && !vol_failed(v))
		vol_collect_orphans(v);
	else if (!vol_readonly(v))
		vol_clean_hint(v, 0);
	/* A violation found by the steps above (logged where it was found) refuses the open. */
	if (vol_failed(v)) {
		st = fs_reason(err, errlen, v->fail_status, "tamper detected while opening the volume in %s (the log names "
			       "what failed)", o->dir);
		goto fail;
	}
	if (v->init_mark)
		drop_stray_mark(v);
	/* Only now that the volume is known to be the trusted one may anything be written to it. */
	if (!vol_readonly(v))
		vol_reserve_make(v);
	*out = v;
	return 0;
fail:
	vol_destroy(v);
	return st;
}

struct gc_walk {
	fs_volume *v;
	struct gc_item {
		uint64_t ino, gen;
	} *items;
	size_t n, cap;
};

static int gc_row(void *ctx, uint64_t ino, uint64_t gen, uint64_t after)
{
	struct gc_walk *w = ctx;
	if (after > w->v->version)
		return 0;
	struct gc_item it = { ino, gen };
	if (VEC_PUSH(w->items, w->n, w->cap, it) != 0)
		return 1;
	return 0;
}

/* Pack files of deleted files that a crash kept from being removed. The gc table is not authenticated,
 * so a file is removed only if the verified tree has no live inode (ino, gen). */
void vol_collect_garbage(fs_volume *v)
{
	struct gc_walk w = { .v = v };
	int rc = fs_store_gc_list(v->store, gc_row, &w);
	if (rc || !w.n) {
		free(w.items);
		if (rc)
			vol_store_violation(v, NULL, rc, "the gc table");
		return;
	}
	if (fs_store_begin(v->store) == 0) {
		for (size_t i = 0; i < w.n; i++) {
			int err = 0;
			struct inode *ip = vol_iget(v, w.items[i].ino, &err);
			if (ip && ip->r.gen == w.items[i].gen)
				continue; /* alive: the row lies */
			if (!ip && err != -ENOENT)
				continue;
			char path[64];
			if (vol_pack_path(v, w.items[i].ino, w.items[i].gen, path, sizeof(path)) == 0)
				fs_beneath_unlink(v->dirfd, path, 0);
			fs_store_del_gc(v->store, w.items[i].ino, w.items[i].gen);
		}
		if (fs_store_commit(v->store) != 0)
			fs_store_rollback(v->store);
	}
	free(w.items);
}

int fsv_close(fs_volume *v)
{
	if (!v)
		return 0;
	pthread_mutex_lock(&v->lock);
	int rc = vol_readonly(v) || (vol_failed(v) && !vol_salvageable(v)) ? 0 : vol_commit_locked(v);
	/* Prepared and not failed: the commit waits for the anchor, which did not answer. */
	if (rc && !vol_failed(v) && vol_prepared(v))
		rc = -ENOTCONN;
	/* Nothing left behind: the next open need not look for orphans. */
	if (!rc && v->state == VOL_CLEAN && !v->ndead)
		vol_clean_hint(v, 1);
	uint64_t lost = vol_readonly(v) ? 0 : vol_uncommitted(v);
	if (vol_failed(v) && !vol_salvageable(v) && (vol_salvage_pending(v) || lost)) {
		char prep[96] = "";
		if (v->fail_from == VOL_PREPARED || v->fail_from == VOL_PREPARED_DIRTY)
			snprintf(prep, sizeof(prep), "version %llu (prepared, never acknowledged by the trust anchor) and ",
				 (unsigned long long)v->pending_row.version);
		fs_log(LOG_ERR, "volume %s: %schanges to %llu more files and directories, acknowledged before the volume "
				"turned read-only (%s), were not committed and are lost",
		       v->dir, prep, (unsigned long long)lost, fs_status_name(v->fail_status));
		rc = -EIO;
	} else if (rc && lost) {
		fs_log(LOG_ERR, "volume %s: changes to %llu files and directories were not committed and are lost",
		       v->dir, (unsigned long long)lost);
	}
	pthread_mutex_unlock(&v->lock);
	vol_destroy(v);
	return rc;
}

void fsv_info(fs_volume *v, fs_volume_info *out)
{
	pthread_mutex_lock(&v->lock);
	memcpy(out->volid, v->hdr.volid, 16);
	out->version = v->version;
	memcpy(out->root, v->root, 32);
	out->chunk_size = v->hdr.chunk_size;
	out->aead_alg = v->hdr.aead_alg;
	int rc = v->store ? fs_store_counts(v->store, &out->inodes, &out->chunks) : -ENOENT;
	if (rc) {
		out->inodes = out->chunks = 0;
		if (v->store)
			vol_store_violation(v, NULL, rc, "row counts");
	}
	out->failed = vol_failed(v) ? v->fail_status : 0;
	out->stale = v->stale;
	out->anchor_none = v->anchor ? fs_anchor_is_none(v->anchor) : 1;
	if (!v->anchor || fs_anchor_describe(v->anchor, out->anchor_desc, sizeof(out->anchor_desc)) != 0)
		out->anchor_desc[0] = 0;
	pthread_mutex_unlock(&v->lock);
}
