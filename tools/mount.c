/* fshield mount: open a protected volume and serve it at a mount point (the daemon is fs/fuse_daemon.c).
 * Also runs as mount.fshield, with mount(8)'s helper calling convention: DIR MOUNTPOINT [-sfnv] [-o OPTS]. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/fuse_daemon.h"
#include "fs/status.h"
#include "tools/commands.h"

const char usage_mount[] =
	"mount [--key-file FILE | --passphrase-file FILE] [--trust URI] [-f] [-o OPTIONS] DIR MOUNTPOINT\n"
	"  Mounts the volume in DIR at MOUNTPOINT and returns once the mount is ready; -f stays in the\n"
	"  foreground and logs to standard error (otherwise to syslog). OPTIONS, comma separated:\n"
	"    key_file=FILE, passphrase_file=FILE, trust=URI   as the long options\n"
	"    commit_interval=SECONDS   commit what is pending this often (5; 0: on fsync and unmount only)\n"
	"    ro, allow_other, and the mount flags nodev, nosuid, noexec, noatime, sync, dirsync, ...\n"
	"  As mount.fshield it takes mount(8)'s form: DIR MOUNTPOINT [-sfnv] [-o OPTIONS].\n";

struct mount_args {
	const char *key_file, *passphrase_file, *trust;
	unsigned commit_interval;
	int ro, allow_other, sloppy;
	char *extra; /* options for libfuse and the kernel */
};

static int append(char **list, const char *opt)
{
	char *s;
	if (asprintf(&s, "%s%s%s", *list ? *list : "", *list ? "," : "", opt) < 0)
		return -1;
	free(*list);
	*list = s;
	return 0;
}

static int is_one_of(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (!strcmp(s, *set))
			return 1;
	return 0;
}

/* Kernel mount flags that libfuse passes on. */
static const char *const pass_flags[] = { "suid", "nosuid", "dev", "nodev", "exec", "noexec", "async", "sync",
					  "dirsync", "atime", "noatime", "debug", NULL };
/* libfuse options with a value that are passed on. */
static const char *const pass_values[] = { "context", "fscontext", "defcontext", "rootcontext", "max_read", NULL };
/* Options of fstab and mount(8) that mean nothing here. */
static const char *const ignored[] = { "defaults", "auto", "noauto", "user", "nouser", "users", "owner", "group",
				       "nofail", "_netdev", "relatime", "norelatime", "strictatime", "nostrictatime",
				       "lazytime", "nolazytime", "diratime", "nodiratime", "default_permissions",
				       NULL };

/* Parses one -o list. The values point into a copy that lives as long as the process. */
static int parse_options(struct mount_args *m, const char *list)
{
	char *copy = strdup(list), *save = NULL;
	if (!copy)
		return FS_ST_IO;
	for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		char *val = strchr(o, '=');
		if (val)
			*val++ = '\0';
		if (val && !strcmp(o, "key_file")) {
			m->key_file = val;
		} else if (val && !strcmp(o, "passphrase_file")) {
			m->passphrase_file = val;
		} else if (val && !strcmp(o, "trust")) {
			m->trust = val;
		} else if (val && !strcmp(o, "commit_interval")) {
			char *end;
			unsigned long s = strtoul(val, &end, 10);
			if (!*val || *end || s > 24 * 3600) {
				fprintf(stderr, "fshield mount: commit_interval: not a number of seconds: %s\n", val);
				return FS_ST_USAGE;
			}
			m->commit_interval = (unsigned)s;
		} else if (!val && (!strcmp(o, "ro") || !strcmp(o, "rw"))) {
			m->ro = o[1] == 'o';
		} else if (!val && !strcmp(o, "allow_other")) {
			m->allow_other = 1;
		} else if (!val && is_one_of(o, pass_flags)) {
			if (append(&m->extra, o))
				return FS_ST_IO;
		} else if (val && is_one_of(o, pass_values)) {
			val[-1] = '=';
			if (append(&m->extra, o))
				return FS_ST_IO;
		} else if (is_one_of(o, ignored) || !strncmp(o, "x-", 2) || !strcmp(o, "comment")) {
			/* nothing to do */
		} else if (!m->sloppy) {
			if (val)
				val[-1] = '=';
			fprintf(stderr, "fshield mount: unknown option '%s'\n", o);
			return FS_ST_USAGE;
		}
	}
	return FS_OK;
}

/* An absolute form of a path that need not exist yet (the current directory is left later). */
static char *absolute(const char *p)
{
	char cwd[PATH_MAX], *s;
	if (p[0] == '/')
		return strdup(p);
	if (!getcwd(cwd, sizeof(cwd)) || asprintf(&s, "%s/%s", cwd, p) < 0)
		return NULL;
	return s;
}

int cmd_mount(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "key-file", required_argument, NULL, 'k' },
		{ "passphrase-file", required_argument, NULL, 'p' },
		{ "trust", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *self = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	int helper = strncmp(self, "mount.", 6) == 0; /* mount.fshield, mount.fuse.fshield */
	struct mount_args m = { .commit_interval = 5 };
	int foreground = 0, fake = 0, c, st;

	optind = 1;
	while ((c = getopt_long(argc, argv, helper ? "fsnvo:t:N:h" : "fo:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'k':
			m.key_file = optarg;
			break;
		case 'p':
			m.passphrase_file = optarg;
			break;
		case 'T':
			m.trust = optarg;
			break;
		case 'f':
			if (helper)
				fake = 1;
			else
				foreground = 1;
			break;
		case 's':
			m.sloppy = 1;
			break;
		case 'n':
		case 'v':
		case 't':
			break;
		case 'o':
			if ((st = parse_options(&m, optarg)) != FS_OK)
				return st;
			break;
		case 'h':
			print_usage(stdout, "mount");
			return 0;
		default:
			if (c == 'N')
				fprintf(stderr, "fshield mount: -N (mount namespaces) is not supported\n");
			print_usage(stderr, "mount");
			return FS_ST_USAGE;
		}
	}
	if (argc - optind != 2) {
		print_usage(stderr, "mount");
		return FS_ST_USAGE;
	}
	if (m.key_file && m.passphrase_file) {
		fprintf(stderr, "fshield mount: give a key file or a passphrase file, not both\n");
		return FS_ST_USAGE;
	}

	char dir[PATH_MAX], mnt[PATH_MAX];
	if (!realpath(argv[optind], dir)) {
		fprintf(stderr, "fshield mount: %s: %s\n", argv[optind], strerror(errno));
		return FS_ST_IO;
	}
	if (!realpath(argv[optind + 1], mnt)) {
		fprintf(stderr, "fshield mount: %s: %s\n", argv[optind + 1], strerror(errno));
		return FS_ST_IO;
	}
	if (fake)
		return FS_OK;

	struct fsd_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.mountpoint = mnt;
	cfg.foreground = foreground;
	cfg.commit_interval = m.commit_interval;
	cfg.allow_other = m.allow_other;
	cfg.mount_opts = m.extra;
	cfg.vol.dir = dir;
	cfg.vol.readonly = m.ro;
	if ((m.key_file && !(cfg.vol.key_file = absolute(m.key_file))) ||
	    (m.passphrase_file && !(cfg.vol.passphrase_file = absolute(m.passphrase_file)))) {
		fprintf(stderr, "fshield mount: %s\n", strerror(errno));
		return FS_ST_IO;
	}
	if (m.trust && !strncmp(m.trust, "file:", 5) && m.trust[5] != '/') {
		char *p = absolute(m.trust + 5), *uri = NULL;
		if (!p || asprintf(&uri, "file:%s", p) < 0) {
			fprintf(stderr, "fshield mount: %s\n", strerror(errno));
			return FS_ST_IO;
		}
		free(p);
		cfg.vol.trust_uri = uri;
	} else {
		cfg.vol.trust_uri = m.trust;
	}
	return fsd_run(&cfg);
}
