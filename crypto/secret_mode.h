/* Secret files (keys, passphrases, TLS private keys) are refused when group or others may read them, as
 * ssh refuses a private key: such a file has likely been read already, or will be. */
#ifndef FS_SECRET_MODE_H
#define FS_SECRET_MODE_H
#include <stddef.h>

/* Checks the open file fd, named path in the message. Only regular files are checked (a pipe or a
 * terminal has no lasting copy to protect). 0, or -EPERM with a message saying how to fix it in why
 * (a thread-local buffer, valid until the next call). */
int fs_secret_mode_check(int fd, const char *path, const char **why);
/* The same by name (for files another library opens itself). A file that cannot be opened is left
 * to that library's own error: 0. */
int fs_secret_mode_check_path(const char *path, const char **why);
#endif
