/* Passphrases typed or handed over: a prompt on the terminal without echo, and the output of an external
 * password program (as gocryptfs's -extpass). Both land in locked memory (free with
 * fs_passphrase_free) and are read once. */
#ifndef FS_PASSIN_H
#define FS_PASSIN_H
#include <stddef.h>

/* Asks on /dev/tty with echo off; with confirm, asks twice and asks again (three times at most) while the
 * two differ. 0, or -1 with a reason in err. */
int fs_pass_prompt(const char *prompt, int confirm, char **pass, size_t *len, char *err, size_t errlen);
/* Runs cmd without a shell (split on spaces: no quoting, no variables), its stdin and stderr those of this
 * process, and takes the first line of its standard output. Fails when it cannot start, exits non-zero,
 * is killed or prints nothing. 0, or -1 with a reason in err. */
int fs_pass_extpass(const char *cmd, char **pass, size_t *len, char *err, size_t errlen);
#endif
