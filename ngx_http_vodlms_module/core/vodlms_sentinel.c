/*
 * vodlms core: Redis Sentinel's +switch-master announcement,
 * "<master name> <old ip> <old port> <new ip> <new port>".  A master name
 * may hold spaces, so the four address fields are taken from the end and
 * what is left before them must be the name, exactly.
 */

#include <string.h>

#include "vodlms_core.h"


vodlms_rc_t
vodlms_switch_master_parse(const char *msg, size_t len, const char *name,
    size_t name_len, vodlms_switch_master_t *sm)
{
    int          n;
    size_t       i, end, flen[4];
    unsigned     port;
    const char  *f[4];

    /* fields 1..4 (old ip, old port, new ip, new port), from the end */

    end = len;

    for (n = 3; n >= 0; n--) {
        i = end;

        while (i > 0 && msg[i - 1] != ' ') {
            i--;
        }

        if (i == 0 || i == end) {
            return VODLMS_EMALFORMED;    /* too few fields, or an empty one */
        }

        f[n] = msg + i;
        flen[n] = end - i;
        end = i - 1;                     /* the space before it */
    }

    /* the rest is the master's name */

    if (end != name_len || (name_len && memcmp(msg, name, name_len) != 0)) {
        return VODLMS_ENOTFOUND;         /* another master's news */
    }

    if (flen[2] > VODLMS_SWITCH_HOST_MAX || flen[3] > 5) {
        return VODLMS_EMALFORMED;
    }

    for (i = 0, port = 0; i < flen[3]; i++) {
        if (f[3][i] < '0' || f[3][i] > '9') {
            return VODLMS_EMALFORMED;
        }

        port = port * 10 + (unsigned) (f[3][i] - '0');
    }

    if (port < 1 || port > 65535) {
        return VODLMS_EMALFORMED;
    }

    sm->old_host.data = f[0];
    sm->old_host.len = flen[0];
    sm->old_port.data = f[1];
    sm->old_port.len = flen[1];
    sm->host.data = f[2];
    sm->host.len = flen[2];
    sm->port = port;

    return VODLMS_OK;
}
