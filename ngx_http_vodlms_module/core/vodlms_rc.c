/*
 * vodlms core: status codes as short lower-case phrases for log lines.
 */

#include "vodlms_core.h"


const char *
vodlms_rc_str(vodlms_rc_t rc)
{
    switch (rc) {
    case VODLMS_OK:          return "ok";
    case VODLMS_ENOTFOUND:   return "not found";
    case VODLMS_EMALFORMED:  return "malformed";
    case VODLMS_ENOTSIGNED:  return "not signed";
    case VODLMS_EBADSIG:     return "bad signature";
    case VODLMS_ETOOLONG:    return "too long";
    case VODLMS_ETYPE:       return "wrong type";
    case VODLMS_ENOMEM:      return "out of memory";
    case VODLMS_EINTERNAL:   return "internal error";
    case VODLMS_EREFUSED:    return "refused";
    }

    /* not a default: label, so that -Wswitch flags a new code left out */
    return "unknown error";
}
