/*
 * file_io.h — whole-buffer positional reads and writes, and directory fsync,
 * shared by the WAL, the manifest and the SST reader.
 *
 * Every function retries EINTR and short transfers until the whole buffer
 * moved, and names `what` (a file description such as "manifest /d/MANIFEST"
 * or "WAL segment 7") in its error message.
 */
#ifndef LSM_FILE_IO_H
#define LSM_FILE_IO_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Writes all len bytes at off.  LSM_IO on failure or no progress. */
lsm_status file_write_at(int fd, const void *buf, size_t len, uint64_t off, const char *what);

/* Reads exactly len bytes at off.  An error is LSM_IO; reaching the end of
 * the file first is `short_code` (LSM_IO where callers checked the size,
 * LSM_CORRUPT where the file's own metadata promised the bytes). */
lsm_status file_read_at(int fd, void *buf, size_t len, uint64_t off, lsm_status short_code,
                        const char *what);

/* Makes the directory's entries (created, renamed, removed files) durable. */
lsm_status fsync_dir(const char *dir);

#endif
