/* Error log: one line per event to stderr, with a level. The access log is a
 * separate concern (operations issue). Never call these per request on the
 * fast path unless something went wrong. */
#ifndef FG_LOG_H
#define FG_LOG_H

enum fg_log_level {
    FG_LOG_DEBUG = 0,
    FG_LOG_INFO,
    FG_LOG_WARN,
    FG_LOG_ERROR,
};

/* Messages below <level> are dropped; default FG_LOG_INFO. */
void fg_log_set_level(enum fg_log_level level);
enum fg_log_level fg_log_get_level(void);

void fg_log(enum fg_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A malloc'd message, as printf would write it; NULL out of memory. */
char *fg_strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define fg_log_debug(...) \
    do { if (fg_log_get_level() <= FG_LOG_DEBUG) fg_log(FG_LOG_DEBUG, __VA_ARGS__); } while (0)
#define fg_log_info(...)  fg_log(FG_LOG_INFO, __VA_ARGS__)
#define fg_log_warn(...)  fg_log(FG_LOG_WARN, __VA_ARGS__)
#define fg_log_error(...) fg_log(FG_LOG_ERROR, __VA_ARGS__)

#endif
