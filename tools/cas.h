/* fshield cas: the command line of the CAS server (tools/cas_serve.c, the server itself in meta/cas/server.c) and its client commands (tools/cas.c). */
#ifndef FS_TOOLS_CAS_H
#define FS_TOOLS_CAS_H
int cas_serve_main(int argc, char **argv);
extern const char usage_cas_serve[];
#endif
