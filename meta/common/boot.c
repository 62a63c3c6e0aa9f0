/* The kernel's boot id (meta/common/boot.h). */
#include "meta/common/boot.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

void fs_boot_id(char *out, size_t n)
{
	if (!n)
		return;
	out[0] = 0;
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t r = read(fd, out, n - 1);
	close(fd);
	out[r > 0 ? r : 0] = 0;
	out[strcspn(out, "\n")] = 0;
}
