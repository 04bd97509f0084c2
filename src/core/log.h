/* Structured logging: one line per event, key=value pairs, to stderr or a
 * file. Callers pass "event=... key=value" text; values that may contain spaces
 * or quotes go through fp_log_quote. Never pass a secret. */
#ifndef FP_CORE_LOG_H
#define FP_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum fp_log_level { FP_LOG_DEBUG, FP_LOG_INFO, FP_LOG_WARN, FP_LOG_ERROR };

/* Parse "debug", "info", "warn", "error"; returns -1 if unknown. */
int fp_log_level_parse(const char *s);
void fp_log_set_level(enum fp_log_level level);
/* Log to this file (appending) instead of stderr; NULL restores stderr. */
int fp_log_set_file(const char *path);
bool fp_log_enabled(enum fp_log_level level);

void fp_log(enum fp_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Quote a value for key=value output: "..." with \" and \\ escaped and control
 * characters dropped. Truncates to fit out. */
const char *fp_log_quote(const char *value, char *out, size_t outlen);

#define fp_debug(...)  fp_log(FP_LOG_DEBUG, __VA_ARGS__)
#define fp_info(...)   fp_log(FP_LOG_INFO, __VA_ARGS__)
#define fp_warn(...)   fp_log(FP_LOG_WARN, __VA_ARGS__)
#define fp_errorf(...) fp_log(FP_LOG_ERROR, __VA_ARGS__)

#endif
