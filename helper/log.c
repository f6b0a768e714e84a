/* Logging to stderr (with a timestamp) or syslog, with levels. */

#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "vodlms_helper.h"

static int  log_level = VH_LOG_INFO;
static int  log_syslog;

static const char *level_names[] = { "error", "warn", "info", "debug" };
static const int   syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

int
vh_log_level_parse(const char *s)
{
    int i;

    for (i = 0; i < 4; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            return i;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        return VH_LOG_WARN;
    }
    return -1;
}

void
vh_log_open(int level, int use_syslog)
{
    log_level = level;
    log_syslog = use_syslog;
    if (use_syslog) {
        openlog("vodlms-helper", LOG_PID, LOG_DAEMON);
    }
}

void
vh_log(int level, const char *fmt, ...)
{
    va_list    ap;
    char       msg[2048];
    char       ts[32];
    struct tm  tm;
    struct timespec now;

    if (level > log_level) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    if (log_syslog) {
        syslog(syslog_prio[level], "%s", msg);
        return;
    }

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ [%s] vodlms-helper[%ld]: %s\n", ts,
            now.tv_nsec / 1000000, level_names[level], (long) getpid(), msg);
}
