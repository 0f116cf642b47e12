/*
 * file_io.c — see file_io.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "file_io.h"

lsm_status file_write_at(int fd, const void *buf, size_t len, uint64_t off, const char *what)
{
    const uint8_t *p = buf;
    size_t left = len;
    while (left > 0) {
        ssize_t n = pwrite(fd, p, left, (off_t) off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return lsm_fail(LSM_IO, "%s: write of %zu bytes at offset %" PRIu64 ": %s", what, len,
                            off, n < 0 ? strerror(errno) : "no progress");
        p += n;
        left -= (size_t) n;
        off += (uint64_t) n;
    }
    return LSM_OK;
}

lsm_status file_read_at(int fd, void *buf, size_t len, uint64_t off, lsm_status short_code,
                        const char *what)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t) off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return lsm_fail(LSM_IO, "%s: read at offset %" PRIu64 ": %s", what, off,
                            strerror(errno));
        if (n == 0)
            return lsm_fail(short_code, "%s: truncated at offset %" PRIu64, what, off);
        p += n;
        len -= (size_t) n;
        off += (uint64_t) n;
    }
    return LSM_OK;
}

lsm_status fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return lsm_fail(LSM_IO, "cannot open directory %s: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    if (rc != 0)
        return lsm_fail(LSM_IO, "fsync of directory %s: %s", dir, strerror(err));
    return LSM_OK;
}
