/* fshield mount: open a protected volume and serve it at a mount point (the daemon is fs/fuse/daemon.c).
 * Also runs as mount.fshield, with mount(8)'s helper calling convention: DIR MOUNTPOINT [-sfnv] [-o OPTS]. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/keys.h"
#include "fs/fuse/daemon.h"
#include "meta/common/status.h"
#include "tools/commands.h"
#include "tools/remount.h"
#include "tools/rundir.h"
#include "tools/keyopts.h"

const char usage_mount[] =
	"mount [--key-file FILE | --passphrase-file FILE | --extpass CMD] [--trust URI] [--tls-cert F --tls-key F --ca F]\n"
	"      [-f] [-o OPTIONS] DIR MOUNTPOINT\n"
	"  Mounts the volume in DIR at MOUNTPOINT and returns once the mount is ready; -f stays in the\n"
	"  foreground and logs to standard error (otherwise to syslog, or to the journal when started by\n"
	"  systemd). OPTIONS, comma separated:\n"
	"    key_file=FILE, passphrase_file=FILE, extpass=CMD, trust=URI   as the long options\n"
	"    tls_cert=FILE, tls_key=FILE, ca=FILE   TLS files for a cas:// trust anchor (which releases the\n"
	"                                           key when no key option is given)\n"
	"    log_file=FILE   append the daemon's log lines to FILE (created mode 0600; not a symbolic link)\n"
	"    commit_interval=SECONDS   commit what is pending this often (5; 0: on fsync and unmount only)\n"
	"    ro, rw, allow_other, and the mount flags nodev, nosuid, noexec, sync, dirsync, ...\n"
	"    relatime (default), atime (the same), strictatime, noatime   when a read updates the access time\n"
	"    remount   change a live mount: ro, rw, the access time and the mount flags (MOUNTPOINT alone\n"
	"              will do; as root)\n"
	"  As mount.fshield it takes mount(8)'s form: DIR MOUNTPOINT [-sfnv] [-o OPTIONS].\n"
	"mount --fspf FSPF (--fspf-key-file F | --fspf-key-fd N) (--fspf-tag-file F | --fspf-tag-fd N)\n"
	"      [-f] [-o OPTIONS] ROOT MOUNTPOINT\n"
	"  Serves the protected tree ROOT read-only as the encrypted fspf FSPF describes it (its key and tag\n"
	"  as printed by 'fshield fspf encrypt', 64 hex digits each, in a file or read from descriptor N);\n"
	"  also as -o fspf=FSPF,fspf_key_file=F,fspf_tag_file=F (or fspf_key_fd=N, fspf_tag_fd=N).\n"
	"  A key or tag on the command line is refused: every local user can read it there.\n";

/* The strings are owned (freed by free_args). */
struct mount_args {
	char *key_file, *passphrase_file, *extpass, *trust, *tls_cert, *tls_key, *ca, *log_file;
	unsigned commit_interval;
	int ro, ro_given, allow_other, sloppy, nonempty;
	int atime;                     /* FS_ATIME_*, or -1: not given (relatime) */
	int remount;                   /* change a live mount (tools/remount.c) */
	unsigned long flags_on, flags_off; /* remount: MS_* flags given */
	char *extra; /* options for libfuse and the kernel */
	char *fspf, *fspf_key_file, *fspf_tag_file; /* image mode */
	int fspf_key_fd, fspf_tag_fd;               /* -1: none */
};

static int set_str(char **dst, const char *val)
{
	char *s = strdup(val);
	if (!s)
		return -1;
	free(*dst);
	*dst = s;
	return 0;
}

static void free_args(struct mount_args *m)
{
	free(m->key_file);
	free(m->passphrase_file);
	free(m->extpass);
	free(m->trust);
	free(m->tls_cert);
	free(m->tls_key);
	free(m->ca);
	free(m->log_file);
	free(m->fspf);
	free(m->fspf_key_file);
	free(m->fspf_tag_file);
	free(m->extra);
}

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
				       "nofail", "_netdev", "lazytime", "nolazytime", "default_permissions", NULL };

/* A descriptor number for the option opt. */
static int set_fd(int *dst, const char *val, const char *opt)
{
	keyopts_secret s = KEYOPTS_SECRET_NONE;
	if (keyopts_secret_fd(&s, val, "mount", opt) != 0)
		return FS_ST_USAGE;
	*dst = s.fd;
	return FS_OK;
}

/* Parses one -o list into m. */
static int parse_options(struct mount_args *m, const char *list)
{
	char *copy = strdup(list), *save = NULL;
	int st = FS_OK;
	if (!copy)
		return FS_ST_IO;
	for (char *o = strtok_r(copy, ",", &save); o && st == FS_OK; o = strtok_r(NULL, ",", &save)) {
		char *val = strchr(o, '=');
		if (val)
			*val++ = '\0';
		if (val && !strcmp(o, "key_file")) {
			st = set_str(&m->key_file, val) ? FS_ST_IO : FS_OK;
		} else if (val && !strcmp(o, "passphrase_file")) {
			st = set_str(&m->passphrase_file, val) ? FS_ST_IO : FS_OK;
		} else if (val && !strcmp(o, "extpass")) {
			st = set_str(&m->extpass, val) ? FS_ST_IO : FS_OK;
		} else if (val && !strcmp(o, "trust")) {
			st = set_str(&m->trust, val) ? FS_ST_IO : FS_OK;
		} else if (val && (!strcmp(o, "tls_cert") || !strcmp(o, "tls_key") || !strcmp(o, "ca"))) {
			st = set_str(o[0] == 'c' ? &m->ca : o[4] == 'c' ? &m->tls_cert : &m->tls_key, val) ? FS_ST_IO : FS_OK;
		} else if (val && !strcmp(o, "log_file")) {
			st = set_str(&m->log_file, val) ? FS_ST_IO : FS_OK;
		} else if (val && !strcmp(o, "fspf")) {
			st = set_str(&m->fspf, val) ? FS_ST_IO : FS_OK;
		} else if (val && (!strcmp(o, "fspf_key") || !strcmp(o, "fspf_tag"))) {
			st = keyopts_refuse_cmdline("mount", o[5] == 'k' ? "-o fspf_key=" : "-o fspf_tag=",
						    o[5] == 'k' ? "-o fspf_key_file=FILE or -o fspf_key_fd=N"
								: "-o fspf_tag_file=FILE or -o fspf_tag_fd=N");
		} else if (val && (!strcmp(o, "fspf_key_file") || !strcmp(o, "fspf_tag_file"))) {
			st = set_str(o[5] == 'k' ? &m->fspf_key_file : &m->fspf_tag_file, val) ? FS_ST_IO : FS_OK;
		} else if (val && (!strcmp(o, "fspf_key_fd") || !strcmp(o, "fspf_tag_fd"))) {
			st = set_fd(o[5] == 'k' ? &m->fspf_key_fd : &m->fspf_tag_fd, val, o);
		} else if (val && !strcmp(o, "commit_interval")) {
			char *end;
			unsigned long secs = strtoul(val, &end, 10);
			if (!*val || *end || secs > 24 * 3600) {
				fprintf(stderr, "fshield mount: commit_interval: not a number of seconds: %s\n", val);
				st = FS_ST_USAGE;
			}
			m->commit_interval = (unsigned)secs;
		} else if (!val && (!strcmp(o, "ro") || !strcmp(o, "rw"))) {
			m->ro = o[1] == 'o';
			m->ro_given = 1;
		} else if (!val && !strcmp(o, "remount")) {
			m->remount = 1;
		} else if (!val && remount_flag(o, &m->flags_on, &m->flags_off, &m->atime)) {
			/* atime options go to the daemon; the kernel's flags also pass on to libfuse, for
			 * /proc/mounts */
			if (is_one_of(o, pass_flags))
				st = append(&m->extra, o) ? FS_ST_IO : FS_OK;
		} else if (!val && !strcmp(o, "allow_other")) {
			m->allow_other = 1;
		} else if (!val && !strcmp(o, "nonempty")) {
			m->nonempty = 1;
		} else if (!val && is_one_of(o, pass_flags)) {
			st = append(&m->extra, o) ? FS_ST_IO : FS_OK;
		} else if (val && is_one_of(o, pass_values)) {
			val[-1] = '=';
			st = append(&m->extra, o) ? FS_ST_IO : FS_OK;
		} else if (is_one_of(o, ignored) || !strncmp(o, "x-", 2) || !strcmp(o, "comment")) {
			/* nothing to do */
		} else if (!m->sloppy) {
			if (val)
				val[-1] = '=';
			fprintf(stderr, "fshield mount: unknown option '%s'\n", o);
			st = FS_ST_USAGE;
		}
	}
	free(copy);
	return st;
}

/* Makes *p absolute, in place (the daemon leaves the current directory). prefix is kept in front. */
static int make_absolute(char **p, size_t prefix)
{
	char cwd[PATH_MAX], *s;
	if (!*p || (*p)[prefix] == '/')
		return 0;
	if (!getcwd(cwd, sizeof(cwd)) || asprintf(&s, "%.*s%s/%s", (int)prefix, *p, cwd, *p + prefix) < 0)
		return -1;
	free(*p);
	*p = s;
	return 0;
}

static int mount_main(struct mount_args *m, int argc, char **argv);

int cmd_mount(int argc, char **argv)
{
	struct mount_args m = { .commit_interval = 5, .fspf_key_fd = -1, .fspf_tag_fd = -1, .atime = -1 };
	int st = mount_main(&m, argc, argv);
	free_args(&m);
	return st;
}

/* The field a file-path option of mount sets. */
static char **path_opt(struct mount_args *m, int c)
{
	switch (c) {
	case 'k': return &m->key_file;
	case 'p': return &m->passphrase_file;
	case 'E': return &m->extpass;
	case 'T': return &m->trust;
	case 'C': return &m->tls_cert;
	case 'K': return &m->tls_key;
	default: return &m->ca;
	}
}

static int mount_main(struct mount_args *m, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "key-file", required_argument, NULL, 'k' },
		{ "passphrase-file", required_argument, NULL, 'p' },
		{ "extpass", required_argument, NULL, 'E' },
		{ "trust", required_argument, NULL, 'T' },
		{ "tls-cert", required_argument, NULL, 'C' },
		{ "tls-key", required_argument, NULL, 'K' },
		{ "ca", required_argument, NULL, 'A' },
		{ "fspf", required_argument, NULL, 1001 },
		{ "fspf-key", required_argument, NULL, 1002 },
		{ "fspf-tag", required_argument, NULL, 1003 },
		{ "fspf-key-file", required_argument, NULL, 1004 },
		{ "fspf-tag-file", required_argument, NULL, 1005 },
		{ "fspf-key-fd", required_argument, NULL, 1006 },
		{ "fspf-tag-fd", required_argument, NULL, 1007 },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *self = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	int helper = strncmp(self, "mount.", 6) == 0; /* mount.fshield, mount.fuse.fshield */
	int foreground = 0, fake = 0, c, st;

	optind = 1;
	while ((c = getopt_long(argc, argv, helper ? "fsnvo:t:N:h" : "fo:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'k':
		case 'p':
		case 'E':
		case 'T':
		case 'C':
		case 'K':
		case 'A':
			if (set_str(path_opt(m, c), optarg))
				return FS_ST_IO;
			break;
		case 1001:
			if (set_str(&m->fspf, optarg))
				return FS_ST_IO;
			break;
		case 1002:
			return keyopts_refuse_cmdline("mount", "--fspf-key KEY", "--fspf-key-file FILE or --fspf-key-fd N");
		case 1003:
			return keyopts_refuse_cmdline("mount", "--fspf-tag TAG", "--fspf-tag-file FILE or --fspf-tag-fd N");
		case 1004:
		case 1005:
			if (set_str(c == 1004 ? &m->fspf_key_file : &m->fspf_tag_file, optarg))
				return FS_ST_IO;
			break;
		case 1006:
		case 1007:
			if ((st = set_fd(c == 1006 ? &m->fspf_key_fd : &m->fspf_tag_fd, optarg,
					 c == 1006 ? "--fspf-key-fd" : "--fspf-tag-fd")) != FS_OK)
				return st;
			break;
		case 'f':
			if (helper)
				fake = 1;
			else
				foreground = 1;
			break;
		case 's':
			m->sloppy = 1;
			break;
		case 'n':
		case 'v':
		case 't':
			break;
		case 'o':
			if ((st = parse_options(m, optarg)) != FS_OK)
				return st;
			break;
		case 'h':
			print_usage(stdout, usage_mount);
			return 0;
		default:
			if (c == 'N')
				fprintf(stderr, "fshield mount: -N (mount namespaces) is not supported\n");
			print_usage(stderr, usage_mount);
			return FS_ST_USAGE;
		}
	}
	/* remount: mount(8) gives the source too; the mount point is the last argument. */
	if (m->remount && (argc - optind == 1 || argc - optind == 2))
		return fake ? FS_OK
			    : remount(argv[argc - 1], m->ro_given ? m->ro : -1, m->atime, m->flags_on, m->flags_off);
	if (argc - optind != 2) {
		print_usage(stderr, usage_mount);
		return FS_ST_USAGE;
	}
	if (!!m->key_file + !!m->passphrase_file + !!m->extpass > 1) {
		fprintf(stderr, "fshield mount: give only one of a key file, a passphrase file and --extpass\n");
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

	if (make_absolute(&m->key_file, 0) ||
	    (m->passphrase_file && strcmp(m->passphrase_file, "-") && make_absolute(&m->passphrase_file, 0)) ||
	    (m->trust && !strncmp(m->trust, "file:", 5) && make_absolute(&m->trust, 5)) ||
	    make_absolute(&m->tls_cert, 0) || make_absolute(&m->tls_key, 0) || make_absolute(&m->ca, 0) ||
	    make_absolute(&m->log_file, 0)) {
		fprintf(stderr, "fshield mount: %s\n", strerror(errno));
		return FS_ST_IO;
	}
	struct fsd_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.mountpoint = mnt;
	cfg.foreground = foreground;
	cfg.commit_interval = m->commit_interval;
	cfg.allow_other = m->allow_other;
	cfg.nonempty = m->nonempty;
	cfg.mount_opts = m->extra;
	cfg.log_file = m->log_file;
	cfg.atime = m->atime < 0 ? FS_ATIME_RELATIME : m->atime;
	char rd[4096];
	cfg.run_dir = run_dir(rd, sizeof(rd));
	if (!cfg.run_dir) {
		fprintf(stderr, "fshield mount: the run directory name is too long\n");
		return FS_ST_USAGE;
	}
	cfg.vol.dir = dir;
	cfg.vol.readonly = m->ro;
	cfg.vol.key_file = m->key_file;
	cfg.vol.passphrase_file = m->passphrase_file;
	cfg.vol.trust_uri = m->trust;
	cfg.vol.tls = (cas_tls){ .cert = m->tls_cert, .key = m->tls_key, .ca = m->ca };
	char err[512];
	if ((st = keyopts_env(&cfg.vol, err, sizeof(err))) != 0) {
		fprintf(stderr, "fshield mount: %s\n", err);
		return st;
	}
	/* Image mode: a protected tree and its fspf, always read-only; no volume key or trust anchor. */
	/* The daemon keeps the fspf key's copy here for the life of the mount: in locked memory. */
	uint8_t *fkey = NULL, ftag[32];
	char fspf_abs[PATH_MAX];
	keyopts_secret fk = { m->fspf_key_file, m->fspf_key_fd }, ft = { m->fspf_tag_file, m->fspf_tag_fd };
	if (m->fspf || keyopts_secret_given(&fk) || keyopts_secret_given(&ft)) {
		if (!m->fspf || !keyopts_secret_given(&fk) || !keyopts_secret_given(&ft) || m->key_file ||
		    m->passphrase_file || m->extpass || m->trust) {
			fprintf(stderr, "fshield mount: --fspf, its key (--fspf-key-file or --fspf-key-fd) and its tag "
					"(--fspf-tag-file or --fspf-tag-fd) go together, without a volume key or trust anchor\n");
			return FS_ST_USAGE;
		}
		if (!(fkey = fs_key_alloc())) {
			fprintf(stderr, "fshield mount: out of memory\n");
			return FS_ST_IO;
		}
		if ((st = keyopts_secret_read(&fk, fkey, fk.file ? "fspf key file" : "fspf key descriptor", err,
					      sizeof(err))) != 0 ||
		    (st = keyopts_secret_read(&ft, ftag, ft.file ? "fspf tag file" : "fspf tag descriptor", err,
					      sizeof(err))) != 0) {
			fprintf(stderr, "fshield mount: %s\n", err);
			fs_key_free(fkey);
			return st;
		}
		if (!realpath(m->fspf, fspf_abs)) {
			fprintf(stderr, "fshield mount: %s: %s\n", m->fspf, strerror(errno));
			fs_key_free(fkey);
			return FS_ST_IO;
		}
		cfg.fspf = fspf_abs;
		cfg.fspf_key = fkey;
		cfg.fspf_tag = ftag;
		cfg.vol.readonly = 1;
	}
	/* The volume key is read here, once, before the daemon starts: a prompt needs this terminal. */
	keyopts_held held = { 0 };
	if (!cfg.fspf && (st = keyopts_resolve(&cfg.vol, m->extpass, 0, &held, err, sizeof(err))) != 0) {
		fprintf(stderr, "fshield mount: %s\n", err);
		return st;
	}
	st = fsd_run(&cfg);
	fs_key_free(fkey);
	keyopts_release(&held);
	return st;
}
