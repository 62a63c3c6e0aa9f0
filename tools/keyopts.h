/* Options shared by the commands that open a volume: --key-file, --passphrase-file, --trust, and the TLS
 * files of a cas:// trust anchor --tls-cert, --tls-key, --ca (passed to the library through the
 * environment variables FSHIELD_TLS_CERT, FSHIELD_TLS_KEY, FSHIELD_CA, as absolute paths). */
#ifndef FS_KEYOPTS_H
#define FS_KEYOPTS_H
#include <getopt.h>

#include "fs/volume/volume.h"

enum { OPT_KEY_FILE = 1000, OPT_PASSPHRASE_FILE, OPT_TRUST, OPT_JSON, OPT_CHUNK_SIZE, OPT_EXPECT_VERSION,
       OPT_EXPECT_ROOT, OPT_CIPHER, OPT_TLS_CERT, OPT_TLS_KEY, OPT_CA };

#define KEYOPTS_LONG                                                                  \
	{ "key-file", required_argument, NULL, OPT_KEY_FILE },                        \
	{ "passphrase-file", required_argument, NULL, OPT_PASSPHRASE_FILE },          \
	{ "trust", required_argument, NULL, OPT_TRUST },                              \
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },                        \
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },                          \
	{ "ca", required_argument, NULL, OPT_CA }

/* Applies one of the shared options to o; returns 1 if c was one of them. */
int keyopts_apply(int c, const char *arg, fs_volume_opts *o);
/* Sets the environment variable of a TLS file (absolute path). 0, or -1 if out of memory. */
int keyopts_set_tls(const char *var, const char *path);
/* Whether the trust anchor in effect (explicit, else $FSHIELD_TRUST) is a cas:// one. */
int keyopts_trust_is_cas(const char *explicit_uri);
/* Prints a JSON string (quoted, escaped). */
void json_str(const char *s);
#endif
