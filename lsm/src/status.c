/* status.c — per-thread error messages and status names. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[512];

lsm_status lsm_fail(lsm_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return st;
}

void lsm_clear_error(void) { last_error[0] = '\0'; }

const char *lsm_errmsg(void) { return last_error; }

const char *lsm_status_name(lsm_status st)
{
    switch (st) {
    case LSM_OK: return "ok";
    case LSM_DONE: return "done";
    case LSM_NOT_FOUND: return "not found";
    case LSM_INVALID: return "invalid argument";
    case LSM_TOO_LARGE: return "too large";
    case LSM_IO: return "I/O error";
    case LSM_CORRUPT: return "corrupt";
    case LSM_NO_MEMORY: return "out of memory";
    case LSM_BUSY: return "busy";
    case LSM_CLOSED: return "closed";
    }
    return "unknown status";
}
