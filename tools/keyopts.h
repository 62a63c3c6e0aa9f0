/* Options shared by the commands that open a volume: --key-file, --passphrase-file, --trust. */
#ifndef FS_KEYOPTS_H
#define FS_KEYOPTS_H
#include <getopt.h>

#include "fs/volume.h"

enum { OPT_KEY_FILE = 1000, OPT_PASSPHRASE_FILE, OPT_TRUST, OPT_JSON, OPT_CHUNK_SIZE, OPT_EXPECT_VERSION,
       OPT_EXPECT_ROOT, OPT_CIPHER };

#define KEYOPTS_LONG                                                                  \
	{ "key-file", required_argument, NULL, OPT_KEY_FILE },                        \
	{ "passphrase-file", required_argument, NULL, OPT_PASSPHRASE_FILE },          \
	{ "trust", required_argument, NULL, OPT_TRUST }

/* Applies one of the shared options to o; returns 1 if c was one of them. */
int keyopts_apply(int c, const char *arg, fs_volume_opts *o);
/* Prints a JSON string (quoted, escaped). */
void json_str(const char *s);
#endif
