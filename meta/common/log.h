/* Logging: fs_log(prio, ...) with syslog priorities; a sink set by the daemon receives every line,
 * otherwise lines go to standard error as "fshield: ...". */
#ifndef FS_COMMON_LOG_H
#define FS_COMMON_LOG_H
typedef void (*fs_log_fn)(int prio, const char *msg);
void fs_log_set_sink(fs_log_fn fn);
void fs_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#endif
