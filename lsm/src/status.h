/*
 * status.h — setting the thread's error message alongside a status code.
 *
 * Usage: return lsm_fail(LSM_IO, "write %s: %s", path, strerror(errno));
 * lsm_fail records the message for lsm_errmsg() and returns the status, so
 * a failure is reported where it is detected and propagated unchanged.
 */
#ifndef LSM_STATUS_H
#define LSM_STATUS_H

#include "lsm.h"

lsm_status lsm_fail(lsm_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void lsm_clear_error(void);

#endif /* LSM_STATUS_H */
