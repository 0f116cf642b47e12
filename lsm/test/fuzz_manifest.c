/*
 * fuzz_manifest.c — libFuzzer target: arbitrary bytes as <dir>/MANIFEST,
 * loaded with manifest_load.
 *
 * Input byte 0 picks how the rest becomes the file, so that the fuzzer also
 * gets past the checksums to the edit decoder:
 *   mode 0  the bytes as they are
 *   mode 1  a valid file header + the bytes
 *   mode 2  a valid header + records framed (with valid checks) from the
 *           bytes: [u16 len][payload]...; a fragment too short to frame is
 *           appended raw (a torn tail)
 * Invariants checked: no crash; LSM_OK or LSM_CORRUPT only; in mode 2, a
 * raw fragment is dropped (records_dropped 1) whenever the load succeeds.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "coding.h"
#include "manifest.h"

#define FILE_HEADER_SIZE 16

static char dir[512];
static char path[600];
static uint8_t file_header[FILE_HEADER_SIZE];

static void remove_dir(void)
{
    unlink(path);
    rmdir(dir);
}

/* Takes the header of a freshly created MANIFEST, so the fuzzer needn't
 * know it.  $TMPDIR, else /dev/shm, else /tmp. */
static void init_once(void)
{
    if (dir[0])
        return;
    const char *base = getenv("TMPDIR");
    if (!base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/fuzz-manifest-XXXXXX", base);
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
    manifest *m;
    if (manifest_open(dir, &m) != LSM_OK || manifest_size(m) != FILE_HEADER_SIZE)
        abort();
    manifest_close(m);
    int fd = open(path, O_RDONLY);
    if (fd < 0 || pread(fd, file_header, FILE_HEADER_SIZE, 0) != FILE_HEADER_SIZE)
        abort();
    close(fd);
    atexit(remove_dir);
}

typedef struct out_buf {
    uint8_t *p;
    size_t len, cap;
} out_buf;

static void out_put(out_buf *o, const void *src, size_t n)
{
    if (o->len + n > o->cap) {
        o->cap = (o->len + n) * 2 + 64;
        o->p = realloc(o->p, o->cap);
        if (!o->p)
            abort();
    }
    if (n)
        memcpy(o->p + o->len, src, n);
    o->len += n;
}

/* One record as manifest.c frames it: u32 len | u32 check | payload | u64 sum. */
static void put_record(out_buf *o, const uint8_t *payload, size_t len)
{
    size_t start = o->len;
    uint8_t h[8];
    put_u32(h, (uint32_t) len);
    put_u32(h + 4, (uint32_t) XXH3_64bits(h, 4));
    out_put(o, h, sizeof h);
    out_put(o, payload, len);
    uint8_t sum[8];
    put_u64(sum, XXH3_64bits(o->p + start, 8 + len));
    out_put(o, sum, sizeof sum);
}

/* Returns true if a raw (torn) fragment ends the file. */
static bool frame_records(out_buf *o, const uint8_t *data, size_t size)
{
    size_t i = 0;
    while (size - i >= 2) {
        size_t len = (size_t) data[i] | (size_t) data[i + 1] << 8;
        i += 2;
        if (len > size - i)
            len = size - i;
        put_record(o, data + i, len);
        i += len;
    }
    out_put(o, data + i, size - i);
    return size > i;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    if (size < 1)
        return 0;
    uint8_t mode = data[0] % 3;
    data++;
    size--;
    out_buf o = {0};
    bool torn = false;
    if (mode >= 1)
        out_put(&o, file_header, FILE_HEADER_SIZE);
    if (mode == 2)
        torn = frame_records(&o, data, size);
    else
        out_put(&o, data, size);

    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || (o.len && write(fd, o.p, o.len) != (ssize_t) o.len))
        abort();
    close(fd);
    free(o.p);

    manifest_state st;
    lsm_status s = manifest_load(dir, &st);
    if (s != LSM_OK && s != LSM_CORRUPT)
        __builtin_trap();
    if (s == LSM_OK) {
        if (!st.found || st.records_dropped > 1 || (st.n_tables && !st.tables))
            __builtin_trap();
        for (uint32_t i = 0; i < st.n_tables; i++)
            if (st.tables[i].smallest_len > TABLE_BOUND_MAX ||
                st.tables[i].largest_len > TABLE_BOUND_MAX)
                __builtin_trap();
        if (mode == 2 && torn && st.records_dropped != 1)
            __builtin_trap();
    } else if (st.tables || st.n_tables) {
        __builtin_trap();   /* a failed load leaves an empty state */
    }
    manifest_state_free(&st);
    return 0;
}
