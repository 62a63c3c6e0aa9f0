/* fshield cas: the command line of the CAS server (tools/cas_serve.c, the server itself in meta/cas/server.c) and its client commands (tools/cas.c). */
#ifndef FS_TOOLS_CAS_H
#define FS_TOOLS_CAS_H
int cas_serve_main(int argc, char **argv);
extern const char usage_cas_serve[];
/* fshield cas seal-store / rotate-master-key (tools/cas_keys.c). */
int cas_keys_main(int argc, char **argv);
extern const char usage_cas_keys[];
/* Option values of the etcd TLS files (the key is 'E'), shared by serve and the store commands. */
enum { OPT_ETCD_CA = 0x1e0, OPT_ETCD_CERT };
#endif
