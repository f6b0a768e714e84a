/*
 * What both unit-test programs use: exact-size copies (so that ASan and
 * valgrind see a read past `len`), repeated input, and is_rc() for the
 * core's return codes.  Needs tap.h and vodlms_core.h first.
 */

#ifndef VODLMS_TEST_HELPERS_H
#define VODLMS_TEST_HELPERS_H

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>


#define LIT(s)  (s), (sizeof(s) - 1)


static inline char *
xdup(const char *s, size_t n)
{
    char  *p;

    p = malloc(n ? n : 1);
    if (p == NULL) {
        abort();
    }

    if (n) {
        memcpy(p, s, n);
    }

    return p;
}


static inline char *
xrepeat(const char *unit, size_t times, size_t *len)
{
    char    *p;
    size_t   i, n;

    n = strlen(unit);
    p = malloc(n * times + 1);
    if (p == NULL) {
        abort();
    }

    for (i = 0; i < times; i++) {
        memcpy(p + i * n, unit, n);
    }

    p[n * times] = '\0';
    *len = n * times;

    return p;
}


static inline int
is_rc_at(vodlms_rc_t got, vodlms_rc_t exp, const char *file, int line,
    const char *fmt, ...)
{
    int      pass;
    va_list  ap;

    va_start(ap, fmt);
    pass = tap_vok(got == exp, file, line, fmt, ap);
    va_end(ap);

    if (!pass) {
        tap_diag("         got: %d (%s)", (int) got, vodlms_rc_str(got));
        tap_diag("    expected: %d (%s)", (int) exp, vodlms_rc_str(exp));
    }

    return pass;
}

#define is_rc(got, exp, ...)                                                  \
    is_rc_at((got), (exp), __FILE__, __LINE__, __VA_ARGS__)


#endif /* VODLMS_TEST_HELPERS_H */
