/* Small helpers: growable buffers, files and directories, child processes. */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vodlms_helper.h"

int
vh_buf_append(vh_buf_t *b, const char *p, size_t n)
{
    size_t  cap;
    char   *d;

    if (b->len + n + 1 > b->cap) {
        cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        d = realloc(b->data, cap);
        if (d == NULL) {
            return -1;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int
vh_buf_printf(vh_buf_t *b, const char *fmt, ...)
{
    va_list  ap;
    int      n;
    char     small[512];
    char    *big;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return -1;
    }
    if ((size_t) n < sizeof(small)) {
        return vh_buf_append(b, small, n);
    }
    big = malloc(n + 1);
    if (big == NULL) {
        return -1;
    }
    va_start(ap, fmt);
    vsnprintf(big, n + 1, fmt, ap);
    va_end(ap);
    n = vh_buf_append(b, big, n);
    free(big);
    return n;
}

void
vh_buf_free(vh_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *
vh_strdup(const char *s)
{
    size_t  n = strlen(s) + 1;
    char   *d = malloc(n);

    if (d != NULL) {
        memcpy(d, s, n);
    }
    return d;
}

/* the schema's vodlms_id: ^[A-Za-z0-9_-]{1,64}$, safe in paths and keys */
int
vh_valid_id(const char *id)
{
    size_t  i, n = strlen(id);

    if (n == 0 || n > VH_ID_MAX) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-'))
        {
            return 0;
        }
    }
    return 1;
}

int
vh_mkdir_p(const char *path, int mode)
{
    char    tmp[4096];
    char   *p;
    size_t  n = strlen(path);

    if (n == 0 || n >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(tmp, path, n + 1);
    for (p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, mode) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    if (mkdir(tmp, mode) != 0 && errno != EEXIST) {
        return -1;
    }
    return 0;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb; (void) flag; (void) ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int
vh_rm_rf(const char *path)
{
    struct stat  st;

    if (lstat(path, &st) != 0) {
        return errno == ENOENT ? 0 : -1;
    }
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int
vh_write_file_atomic(const char *path, const char *data, size_t len)
{
    char     tmp[4200];
    int      fd;
    ssize_t  n;
    size_t   off = 0;

    snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long) getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -1;
    }
    while (off < len) {
        n = write(fd, data + off, len - off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            close(fd);
            unlink(tmp);
            return -1;
        }
        off += n;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

double
vh_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Run argv with stdin from /dev/null and pipes for stdout and stderr.  The
 * child gets its own process group (a terminal's Ctrl-C is for the helper,
 * which decides) and dies with the helper (PR_SET_PDEATHSIG).  Returns the
 * pid, or -1.
 */
pid_t
vh_spawn(char *const argv[], int *out_fd, int *err_fd)
{
    int    po[2], pe[2];
    pid_t  pid;

    if (pipe2(po, O_CLOEXEC) != 0) {
        return -1;
    }
    if (pipe2(pe, O_CLOEXEC) != 0) {
        close(po[0]); close(po[1]);
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        close(po[0]); close(po[1]); close(pe[0]); close(pe[1]);
        return -1;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        /* a terminal's Ctrl-C is for the helper, which decides */
        setpgid(0, 0);
        /* and if the helper dies outright, ffmpeg goes with it */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (devnull >= 0) {
            dup2(devnull, 0);
        }
        dup2(po[1], 1);
        dup2(pe[1], 2);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        execvp(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    *out_fd = po[0];
    *err_fd = pe[0];
    return pid;
}


/* sleeps, but returns early once a stop is requested */
void
vh_sleep_interruptible(double seconds)
{
    double end = vh_now() + seconds;

    while (!vh_stop && vh_now() < end) {
        double left = end - vh_now();
        struct timespec ts;
        if (left > 0.2) {
            left = 0.2;
        }
        ts.tv_sec = 0;
        ts.tv_nsec = (long) (left * 1e9);
        nanosleep(&ts, NULL);
    }
}

int
vh_run_capture(char *const argv[], vh_buf_t *out, vh_buf_t *err,
    double timeout)
{
    int            po[2], pe[2], status, open_fds;
    pid_t          pid;
    double         deadline = vh_now() + timeout;
    struct pollfd  fds[2];
    char           chunk[8192];
    ssize_t        n;

    pid = vh_spawn(argv, &po[0], &pe[0]);
    if (pid < 0) {
        return -1;
    }

    fds[0].fd = po[0];
    fds[0].events = POLLIN;
    fds[1].fd = pe[0];
    fds[1].events = POLLIN;
    open_fds = 2;

    while (open_fds > 0) {
        double left = deadline - vh_now();
        int    i, r;

        if (left <= 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            close(po[0]); close(pe[0]);
            if (err != NULL) {
                vh_buf_printf(err, "\n%s timed out after %.0f s", argv[0],
                              timeout);
            }
            return -1;
        }
        r = poll(fds, 2, (int) (left * 1000) + 1);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        for (i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                continue;
            }
            n = read(fds[i].fd, chunk, sizeof(chunk));
            if (n > 0) {
                vh_buf_t *b = i == 0 ? out : err;
                if (b != NULL) {
                    vh_buf_append(b, chunk, n);
                }
            } else if (n == 0 || errno != EINTR) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            }
        }
    }
    if (fds[0].fd >= 0) {
        close(fds[0].fd);
    }
    if (fds[1].fd >= 0) {
        close(fds[1].fd);
    }

    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    if (err != NULL) {
        vh_buf_printf(err, "\n%s killed by signal %d", argv[0],
                      WTERMSIG(status));
    }
    return -1;
}
