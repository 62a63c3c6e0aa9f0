/* Which boot of which machine this is: the kernel's boot id, for telling a process id or an inode number of
 * this boot from one of another machine or an earlier boot (writer leases, docs/FORMAT.md 14.2). */
#ifndef FS_COMMON_BOOT_H
#define FS_COMMON_BOOT_H
#include <stddef.h>

/* /proc/sys/kernel/random/boot_id without its newline, or "" when it cannot be read. */
void fs_boot_id(char *out, size_t n);
#endif
