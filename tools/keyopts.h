/* Options shared by the commands that open a volume: --key-file, --passphrase-file, --trust, and the TLS
 * files of a cas:// trust anchor --tls-cert, --tls-key, --ca, and the expected creator of its session
 * --cas-creator. What the command line leaves out comes from
 * the environment, read here and nowhere below: FSHIELD_TRUST, FSHIELD_TLS_CERT, FSHIELD_TLS_KEY,
 * FSHIELD_CA, FSHIELD_CAS_CREATOR and FSHIELD_CAS_TIMEOUT. */
#ifndef FS_KEYOPTS_H
#define FS_KEYOPTS_H
#include <getopt.h>

#include "fs/volume/volume.h"
#include "meta/cas/client.h"

enum { OPT_KEY_FILE = 1000, OPT_PASSPHRASE_FILE, OPT_TRUST, OPT_JSON, OPT_CHUNK_SIZE, OPT_EXPECT_VERSION,
       OPT_EXPECT_ROOT, OPT_CIPHER, OPT_TLS_CERT, OPT_TLS_KEY, OPT_CA, OPT_CAS_CREATOR, OPT_EXTPASS,
       OPT_PROGRESS, OPT_QUIET };

#define KEYOPTS_LONG                                                                  \
	{ "key-file", required_argument, NULL, OPT_KEY_FILE },                        \
	{ "passphrase-file", required_argument, NULL, OPT_PASSPHRASE_FILE },          \
	{ "extpass", required_argument, NULL, OPT_EXTPASS },                          \
	{ "trust", required_argument, NULL, OPT_TRUST },                              \
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },                        \
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },                          \
	{ "ca", required_argument, NULL, OPT_CA },                                    \
	{ "cas-creator", required_argument, NULL, OPT_CAS_CREATOR }

/* A 32-byte secret given as hex (an fspf key or tag): from a file or an open file descriptor, never on
 * the command line, where every local user can read it (/proc/PID/cmdline). */
typedef struct {
	const char *file; /* NULL: none */
	int fd;           /* -1: none */
} keyopts_secret;
#define KEYOPTS_SECRET_NONE ((keyopts_secret){ NULL, -1 })
/* Sets s->fd from the text of a --X-fd option. 0, or -1 with a message on stderr naming opt. */
int keyopts_secret_fd(keyopts_secret *s, const char *arg, const char *prog, const char *opt);
/* Whether a file or a descriptor was given. */
int keyopts_secret_given(const keyopts_secret *s);
/* Reads the secret (64 hex digits, optional newline) into out; a descriptor is closed after reading.
 * 0, or the exit status (FS_ST_IO: the file cannot be read; FS_ST_USAGE: what it holds or its mode is
 * wrong) with a reason naming what (e.g. "--fspf-key-file FILE"). */
int keyopts_secret_read(const keyopts_secret *s, uint8_t out[32], const char *what, char *err, size_t errlen);
/* Refuses a secret given on the command line as opt, with a message that names the forms to use instead.
 * Returns FS_ST_USAGE. */
int keyopts_refuse_cmdline(const char *prog, const char *opt, const char *instead);

/* Key input (docs/CLI.md "Keys"): a key file, a passphrase file ("-": standard input), an external
 * password program (--extpass CMD), or, with none of them on a terminal, a prompt without echo. Each is
 * read exactly once, into locked memory held here, and handed to the library as bytes. */
typedef struct {
	uint8_t *key; /* fs_key_alloc'd */
	char *pass;   /* fs_passphrase_free'd */
	size_t len;
} keyopts_held;
#define KEYIN_CONFIRM 1   /* a new passphrase: a prompt asks twice */
#define KEYIN_NO_PROMPT 2 /* the key is optional (info): never ask */
/* The --extpass given to keyopts_apply, or NULL. */
const char *keyopts_extpass(void);
/* Reads the key o names (o->key_file, o->passphrase_file) or extpass gives, or prompts, and sets o->key or
 * o->passphrase to what was read (o->key_file and o->passphrase_file become NULL). With none given, a
 * cas:// anchor or no terminal, nothing is read: 0. Returns 0 or an fs_status with a reason in err. */
int keyopts_resolve(fs_volume_opts *o, const char *extpass, int flags, keyopts_held *h, char *err, size_t errlen);
void keyopts_release(keyopts_held *h);

/* Applies one of the shared options to o; returns 1 if c was one of them. */
int keyopts_apply(int c, const char *arg, fs_volume_opts *o);
/* The trust anchor in effect: the explicit one, else $FSHIELD_TRUST, else NULL (the library's default). */
const char *keyopts_trust_uri(const char *explicit_uri);
/* Whether the trust anchor in effect is a cas:// one. */
int keyopts_trust_is_cas(const char *explicit_uri);
/* Completes TLS settings from the environment: each file not given on the command line from
 * FSHIELD_TLS_CERT, FSHIELD_TLS_KEY, FSHIELD_CA, the time per request from FSHIELD_CAS_TIMEOUT (seconds,
 * may be fractional). 0, or -EINVAL with a reason if the time is not a number of seconds. */
int keyopts_tls_env(cas_tls *t, char *err, size_t errlen);
/* After parsing: the trust anchor (its URI's form checked) and, for a cas:// one, its TLS settings from the
 * environment where the command line gave none. 0, or FS_ST_USAGE with a reason. */
int keyopts_env(fs_volume_opts *o, char *err, size_t errlen);
#endif
