#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum fp_log_level min_level = FP_LOG_INFO;
static FILE *log_file; /* NULL: stderr */

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int fp_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0) return i;
    return -1;
}

void fp_log_set_level(enum fp_log_level level)
{
    min_level = level;
}

int fp_log_set_file(const char *path)
{
    FILE *f = NULL;
    if (path) {
        f = fopen(path, "ae");
        if (!f) return -1;
        setvbuf(f, NULL, _IOLBF, 0);
    }
    if (log_file) fclose(log_file);
    log_file = f;
    return 0;
}

bool fp_log_enabled(enum fp_log_level level)
{
    return level >= min_level;
}

void fp_log(enum fp_log_level level, const char *fmt, ...)
{
    if (level < min_level) return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    /* Build the whole line first so concurrent threads never interleave. */
    char line[2048];
    int n = snprintf(line, sizeof line, "time=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) len = sizeof line - 2;
    line[len++] = '\n';
    fwrite(line, 1, len, log_file ? log_file : stderr);
}

const char *fp_log_quote(const char *value, char *out, size_t outlen)
{
    size_t o = 0;
    if (outlen < 3) {
        if (outlen) out[0] = '\0';
        return out;
    }
    out[o++] = '"';
    for (const char *p = value ? value : ""; *p && o + 3 < outlen; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f) continue;
        if (c == '"' || c == '\\') out[o++] = '\\';
        out[o++] = (char)c;
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}
