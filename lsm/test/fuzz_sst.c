/*
 * fuzz_sst.c — libFuzzer target for the SST reader: whatever the file holds,
 * opening it and walking every block the footer and index reference must
 * return a status, never crash, hang or leak.
 *
 * The first input byte picks a mode (byte % 4):
 *   0  the rest is the file, as is (checksums verified, then not);
 *   1  the rest is one decoded block, handed to the block/index decoders;
 *   2  the rest is the file with its footer magic and checksum repaired, read
 *      without block checksums, so mutations reach handles, trailers, lz4
 *      and the block decoders;
 *   3  a valid table is built from entries taken from the input, then up to
 *      7 bytes are flipped (positions from the input), optionally the footer
 *      is re-sealed, and the file is read both ways.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -Ilsm/include -Ilsm/src \
 *   lsm/test/fuzz_sst.c lsm/src/sst_*.c lsm/src/bloom.c lsm/src/status.c -llz4 -lxxhash
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "bloom.h"
#include "coding.h"
#include "sst.h"

static char path[256];
static block_buf index_buf, data_buf, aux_buf;   /* reused across runs */

/* Seeks every entry's own (key, ts) and a prefix of it; steps backward. */
static void exercise_block(const sst_block *b, const uint8_t *filter, size_t filter_len)
{
    lsm_entry e;
    for (uint32_t i = 0; i < b->count; i++) {
        if (sst_block_entry(b, i, &e) != LSM_OK)
            continue;
        uint32_t at = sst_block_seek(b, e.key, e.key_len, e.ts);
        if (at > b->count)
            abort();   /* seek must stay within [0, count] */
        sst_block_seek(b, e.key, e.key_len / 2, INT64_MIN);
        if (filter)
            bloom_may_contain(filter, filter_len, bloom_hash(e.key, e.key_len));
    }
    for (uint32_t i = b->count; i-- > 0;)
        (void) sst_block_entry(b, i, &e);
    (void) sst_block_entry(b, b->count, &e);
}

static void exercise_index(const sst_block *index)
{
    sst_index_entry ie;
    for (uint32_t i = 0; i < index->count; i++)
        if (sst_index_entry_at(index, i, &ie) == LSM_OK &&
            sst_index_seek(index, ie.last_key, ie.last_key_len, ie.last_ts) > index->count)
            abort();
}

static void walk_table(bool verify)
{
    sst_table *t;
    if (sst_table_open(path, 1, &t) != LSM_OK)
        return;
    const table_meta *m = sst_table_meta(t);
    if (m->smallest_len > TABLE_BOUND_MAX || m->largest_len > TABLE_BOUND_MAX)
        abort();
    sst_block index, blk;
    const uint8_t *filter = NULL;
    size_t filter_len = 0;
    if (sst_read_block(t, sst_table_filter_handle(t), verify, &aux_buf) == LSM_OK) {
        filter = aux_buf.data;
        filter_len = aux_buf.len;
    }
    if (sst_read_block(t, sst_table_index_handle(t), verify, &index_buf) == LSM_OK &&
        sst_block_parse(index_buf.data, index_buf.len, &index) == LSM_OK) {
        exercise_index(&index);
        for (uint32_t i = 0; i < index.count; i++) {
            sst_index_entry ie;
            if (sst_index_entry_at(&index, i, &ie) == LSM_OK &&
                sst_read_block(t, ie.handle, verify, &data_buf) == LSM_OK &&
                sst_block_parse(data_buf.data, data_buf.len, &blk) == LSM_OK)
                exercise_block(&blk, filter, filter_len);
        }
    }
    if (sst_read_block(t, sst_table_tombstone_handle(t), verify, &data_buf) == LSM_OK &&
        sst_block_parse(data_buf.data, data_buf.len, &blk) == LSM_OK)
        exercise_block(&blk, NULL, 0);
    sst_table_close(t);
}

static bool write_file(const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return false;
    bool ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

/* Gives the last SST_FOOTER_SIZE bytes a valid magic and checksum. */
static void seal_footer(uint8_t *file, size_t len)
{
    if (len < SST_FOOTER_SIZE)
        return;
    uint8_t *f = file + len - SST_FOOTER_SIZE;
    put_u64(f + SST_FOOTER_SIZE - 8, SST_MAGIC);
    put_u64(f + SST_FOOTER_SIZE - 16, XXH3_64bits(f, SST_FOOTER_SIZE - 16));
}

static void fuzz_block(const uint8_t *data, size_t len)
{
    sst_block b;
    if (sst_block_parse(data, len, &b) != LSM_OK)
        return;
    exercise_block(&b, data, len);
    exercise_index(&b);
}

static void fuzz_sealed_file(const uint8_t *data, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL)
        return;
    memcpy(copy, data, len);
    seal_footer(copy, len);
    if (write_file(copy, len))
        walk_table(false);
    free(copy);
}

static int cmp_entry(const void *a, const void *b)
{
    return entry_compare(a, b);
}

/* Entries from a byte stream: klen, key, ts, vlen, value, flags. */
static size_t parse_entries(const uint8_t *p, const uint8_t *end, lsm_entry *out, size_t max)
{
    size_t n = 0;
    while (n < max && end - p >= 4) {
        lsm_entry *e = &out[n];
        size_t klen = 1 + p[0] % 16, vlen = p[1] % 64;
        uint8_t flags = p[2];
        e->ts = (int8_t) p[3];
        p += 4;
        if ((size_t) (end - p) < klen + vlen)
            break;
        e->key = p, e->key_len = (uint32_t) klen, p += klen;
        e->value = p, e->value_len = (uint32_t) vlen, p += vlen;
        e->seq = 1 + n;
        e->type = (flags & 3) == 1 ? ENTRY_DELETE : (flags & 3) == 2 ? ENTRY_RANGE_DELETE : ENTRY_PUT;
        e->expire_at = flags & 4 ? 1700000000 + flags : 0;
        n++;
    }
    return n;
}

static void fuzz_built_table(const uint8_t *data, size_t len)
{
    if (len < 2)
        return;
    size_t nmut = data[0] % 8;
    bool reseal = data[0] & 0x80;
    uint32_t bits = 1 + data[1] % 32;
    data += 2, len -= 2;
    if (len < nmut * 3)
        return;
    const uint8_t *muts = data;
    data += nmut * 3, len -= nmut * 3;

    lsm_entry es[64];
    size_t n = parse_entries(data, data + len, es, 64);
    qsort(es, n, sizeof es[0], cmp_entry);
    sst_options opt = {.block_size = SST_MIN_BLOCK_SIZE, .bloom_bits_per_key = bits};
    sst_builder *b;
    if (sst_builder_open(path, 1, &opt, &b) != LSM_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        if (es[i].type == ENTRY_RANGE_DELETE)
            (void) sst_builder_add_range_tombstone(b, &es[i]);
        else
            (void) sst_builder_add(b, &es[i]);   /* duplicates are refused */
    }
    table_meta meta;
    if (sst_builder_finish(b, &meta) != LSM_OK)
        return;
    walk_table(true);

    FILE *f = fopen(path, "r+b");
    if (f == NULL)
        return;
    uint8_t *file = malloc(meta.file_size);
    if (file && fread(file, 1, meta.file_size, f) == meta.file_size) {
        for (size_t i = 0; i < nmut; i++)
            file[get_u16(muts + 3 * i) % meta.file_size] ^= muts[3 * i + 2] | 1;
        if (reseal)
            seal_footer(file, meta.file_size);
        rewind(f);
        fwrite(file, 1, meta.file_size, f);
    }
    free(file);
    fclose(f);
    walk_table(true);
    walk_table(false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (path[0] == '\0') {
        const char *dir = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/fuzz_sst_%d.sst", dir ? dir : "/tmp", (int) getpid());
    }
    if (size == 0)
        return 0;
    uint8_t mode = data[0] % 4;
    data++, size--;
    switch (mode) {
    case 0:
        if (write_file(data, size)) {
            walk_table(true);
            walk_table(false);
        }
        break;
    case 1:
        fuzz_block(data, size);
        break;
    case 2:
        fuzz_sealed_file(data, size);
        break;
    case 3:
        fuzz_built_table(data, size);
        break;
    }
    unlink(path);
    return 0;
}
