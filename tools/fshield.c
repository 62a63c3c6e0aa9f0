/* fshield: a table-driven dispatcher over one file per subcommand. */
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include "crypto/keys.h"
#include "meta/common/status.h"
#include "tools/commands.h"

struct command {
	const char *name, *summary, *usage;
	int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
#define CMD(n, s) { #n, s, usage_##n, cmd_##n },
#include "tools/commands.def"
#undef CMD
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}


static const char usage_help[] =
	"help [COMMAND]\n"
	"  Lists the commands, or prints COMMAND's usage (as fshield COMMAND --help does).\n";

static void overview(FILE *f)
{
	fprintf(f, "usage: fshield COMMAND [ARGS...]\n\n"
		   "A confidential, tamper-evident filesystem over an untrusted directory.\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "  %-8s %s\n\n'fshield help COMMAND' shows a command's options.\n", "help",
		"show this text, or a command's usage");
	fprintf(f, "'fshield COMMAND --help' does the same; 'fshield --version' prints the version.\n");
}

int main(int argc, char **argv)
{
	/* Every subcommand may hold a key: no core dumps, no ptrace or /proc/PID/mem by other local users. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		perror("fshield: prctl(PR_SET_DUMPABLE)");
		return FS_ST_IO;
	}
	if (fs_crypto_init() != 0) {
		fprintf(stderr, "fshield: cannot initialise the crypto library\n");
		return FS_ST_IO;
	}
	/* As mount.fshield (mount -t fshield) or mount.fuse.fshield (mount -t fuse.fshield, fstab), behave as
	 * "fshield mount" called by mount(8). */
	const char *self = basename(argv[0]);
	if ((!strcmp(self, "mount.fshield") || !strcmp(self, "mount.fuse.fshield")) && find("mount"))
		return find("mount")->run(argc, argv);
	if (argc < 2) {
		overview(stderr);
		return FS_ST_USAGE;
	}
	if (!strcmp(argv[1], "--version"))
		return find("version")->run(1, argv + 1);
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		if (argc > 3) {
			fprintf(stderr, "fshield help: one command at most\n");
			print_usage(stderr, usage_help);
			return FS_ST_USAGE;
		}
		if (argc == 3 && (!strcmp(argv[2], "help") || !strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
			print_usage(stdout, usage_help);
			return 0;
		}
		if (argc == 3) {
			if (!find(argv[2])) {
				fprintf(stderr, "fshield: unknown command '%s'; 'fshield help' lists them\n", argv[2]);
				return FS_ST_USAGE;
			}
			print_usage(stdout, find(argv[2])->usage);
			return 0;
		}
		overview(stdout);
		return 0;
	}
	const struct command *c = find(argv[1]);
	if (!c) {
		fprintf(stderr, "fshield: unknown command '%s'\n", argv[1]);
		overview(stderr);
		return FS_ST_USAGE;
	}
	/* --help anywhere, for every command and subcommand: the command's usage (which lists its subcommands'). */
	if (help_requested(argc - 1, argv + 1)) {
		print_usage(stdout, c->usage);
		return 0;
	}
	return c->run(argc - 1, argv + 1);
}
