/*
 * A tiny TAP producer for the unit tests: one test binary, no framework.
 *
 *     ok(cond, "name %d", i);
 *     is_int(got, expected, "name");
 *     is_str(got, expected, "name");          NUL-terminated strings
 *     is_mem(got, got_len, exp, exp_len, "name");
 *     diag("anything");
 *     return done_testing();                  prints "1..N", exit status
 *
 * Diagnostics go to stderr with the file:line of the failing check, as
 * Test::More does, so that prove shows them.
 */

#ifndef VODLMS_TAP_H
#define VODLMS_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>


static struct {
    int  run;
    int  failed;
    int  planned;
} tap_state;


/*
 * A name with a newline would break the TAP stream, a '#' start a directive;
 * bytes >= 0x80 are escaped too, as test inputs are often invalid UTF-8.
 */
static inline void
tap_vname(const char *fmt, va_list ap)
{
    int            n, i;
    char           name[512];
    unsigned char  c;

    if (fmt == NULL || fmt[0] == '\0') {
        return;
    }

    n = vsnprintf(name, sizeof(name), fmt, ap);
    if (n < 0) {
        return;
    }

    if (n >= (int) sizeof(name)) {
        n = sizeof(name) - 1;
    }

    fputs(" - ", stdout);

    for (i = 0; i < n; i++) {
        c = (unsigned char) name[i];

        if (c == '#' || c == '\\') {
            printf("\\%c", c);

        } else if (c < 0x20 || c >= 0x7f) {
            printf("\\x%02x", c);

        } else {
            putchar(c);
        }
    }
}


static inline void
tap_diag(const char *fmt, ...)
{
    va_list  ap;

    fflush(stdout);
    fputs("# ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}


/* bytes as a C literal, so NULs, control bytes and lengths are visible */
static inline void
tap_diag_mem(const char *label, const char *s, size_t n)
{
    size_t         i;
    unsigned char  c;

    fflush(stdout);

    if (s == NULL) {
        fprintf(stderr, "# %12s: NULL\n", label);
        return;
    }

    fprintf(stderr, "# %12s: \"", label);

    for (i = 0; i < n && i < 300; i++) {
        c = (unsigned char) s[i];

        if (c == '"' || c == '\\') {
            fprintf(stderr, "\\%c", c);

        } else if (c >= 0x20 && c < 0x7f) {
            fputc(c, stderr);

        } else {
            fprintf(stderr, "\\x%02x", c);
        }
    }

    fprintf(stderr, "\"%s (%zu bytes)\n", i < n ? "..." : "", n);
    fflush(stderr);
}


static inline int
tap_vok(int pass, const char *file, int line, const char *fmt, va_list ap)
{
    tap_state.run++;

    printf("%sok %d", pass ? "" : "not ", tap_state.run);
    tap_vname(fmt, ap);
    putchar('\n');
    fflush(stdout);

    if (!pass) {
        tap_state.failed++;
        tap_diag("  Failed test at %s line %d.", file, line);
    }

    return pass;
}


static inline int
tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    pass = tap_vok(pass, file, line, fmt, ap);
    va_end(ap);

    return pass;
}


static inline int
tap_is_int(long long got, long long exp, const char *file, int line,
    const char *fmt, ...)
{
    int      pass;
    va_list  ap;

    va_start(ap, fmt);
    pass = tap_vok(got == exp, file, line, fmt, ap);
    va_end(ap);

    if (!pass) {
        tap_diag("         got: %lld", got);
        tap_diag("    expected: %lld", exp);
    }

    return pass;
}


static inline int
tap_is_mem(const char *got, size_t got_len, const char *exp, size_t exp_len,
    const char *file, int line, const char *fmt, ...)
{
    int      pass;
    va_list  ap;

    if (got == NULL || exp == NULL) {
        pass = got == exp;

    } else {
        pass = got_len == exp_len && memcmp(got, exp, got_len) == 0;
    }

    va_start(ap, fmt);
    pass = tap_vok(pass, file, line, fmt, ap);
    va_end(ap);

    if (!pass) {
        tap_diag_mem("got", got, got_len);
        tap_diag_mem("expected", exp, exp_len);
    }

    return pass;
}


/* a function, not "s ? strlen(s) : 0": -Waddress dislikes that on arrays */
static inline size_t
tap_strlen(const char *s)
{
    return s == NULL ? 0 : strlen(s);
}


static inline int
tap_done_testing(void)
{
    if (tap_state.planned == 0) {
        printf("1..%d\n", tap_state.run);

    } else if (tap_state.planned != tap_state.run) {
        tap_diag("planned %d tests but ran %d", tap_state.planned,
                 tap_state.run);
        tap_state.failed++;
    }

    if (tap_state.failed) {
        tap_diag("failed %d of %d tests", tap_state.failed, tap_state.run);
    }

    fflush(stdout);

    return tap_state.failed > 254 ? 254 : tap_state.failed;
}


#define plan(n)                                                               \
    do {                                                                      \
        tap_state.planned = (n);                                              \
        printf("1..%d\n", (n));                                               \
    } while (0)

#define ok(cond, ...)                                                         \
    tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, exp, ...)                                                 \
    tap_is_int((long long) (got), (long long) (exp), __FILE__, __LINE__,      \
               __VA_ARGS__)

#define is_mem(got, got_len, exp, exp_len, ...)                               \
    tap_is_mem((got), (got_len), (exp), (exp_len), __FILE__, __LINE__,        \
               __VA_ARGS__)

#define is_str(got, exp, ...)                                                 \
    tap_is_mem((got), tap_strlen(got), (exp), tap_strlen(exp), __FILE__,     \
               __LINE__, __VA_ARGS__)

#define diag(...)  tap_diag(__VA_ARGS__)

#define done_testing()  tap_done_testing()


#endif /* VODLMS_TAP_H */
