#ifndef ORACLE_BEACON_H
#define ORACLE_BEACON_H

#include "vodlms_core.h"

/* vodlms_beacon_parse() as jansson's json_loadb() decides it */
vodlms_rc_t oracle_beacon_parse(const char *body, size_t len, double slack,
    vodlms_beacon_t *b, const char **why);

#endif
