/* Paths beneath a directory the daemon does not trust (the backing directory): every component of a
 * relative path is resolved inside that directory and none may be a symbolic link, so a planted link
 * never makes a root daemon open, create, rename or delete anything elsewhere. openat2 with
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS where the kernel has it, otherwise a walk one component at a time
 * with O_NOFOLLOW | O_DIRECTORY. Paths are plain names separated by '/': no leading '/', no "." or "..",
 * no empty component (-EINVAL; -EXDEV for ".."). A symbolic link anywhere gives -ELOOP. Functions return an fd or 0 on
 * success, -errno on failure; they hold no descriptor after they return (except the fd they return). */
#ifndef FS_BENEATH_H
#define FS_BENEATH_H
#include <sys/stat.h>
#include <sys/types.h>

/* openat(dirfd, rel, flags | O_NOFOLLOW, mode) with no symbolic link in any component. */
int fs_beneath_open(int dirfd, const char *rel, int flags, mode_t mode);
/* Opens the directory holding the last component of rel; *last points into rel at that component.
 * Returns dirfd itself when rel has a single component: close the result with fs_beneath_close. */
int fs_beneath_parent(int dirfd, const char *rel, const char **last);
void fs_beneath_close(int dirfd, int fd);
int fs_beneath_mkdir(int dirfd, const char *rel, mode_t mode);
/* flags: 0 or AT_REMOVEDIR. The last component itself is removed, never followed. */
int fs_beneath_unlink(int dirfd, const char *rel, int flags);
int fs_beneath_rename(int dirfd, const char *from, const char *to);
/* lstat beneath dirfd: a symbolic link as the last component is reported, not followed. */
int fs_beneath_stat(int dirfd, const char *rel, struct stat *st);
/* 0 for a regular file with a single name; -ELOOP for a symbolic link, -EMLINK for a file with more
 * names (a hard link to something elsewhere), -EISDIR for a directory, -EINVAL for any other type
 * (FIFO, device, socket), -ENOENT when missing. */
int fs_beneath_check_plain(int dirfd, const char *rel);

/* Tests: 1 forces the component walk even where openat2 works. */
void fs_beneath_force_walk(int on);

#endif
