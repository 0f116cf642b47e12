/*
 * sst.h — sorted string tables: immutable files of lsm_entry, written once by
 * a builder (flush, compaction) and read by every process with its own fd.
 *
 * File layout (format in SST_FORMAT.md):
 *
 *   [data block]* [filter block] [range-tombstone block] [index block] [footer]
 *
 * Every block is stored as  payload | kind u8 | ulen u32 | xxh3 u64  where the
 * payload is the block's bytes, lz4-compressed (kind 1) or raw (kind 0), and
 * the checksum is XXH3_64bits over payload + kind + ulen.  An sst_handle names
 * the stored bytes including that 13-byte trailer.
 *
 * A decoded block (sst_block) is entries followed by a u32 offset per entry
 * and a u32 entry count, so readers binary-search and step both ways without
 * decoding everything.  Data, index and range-tombstone blocks all use it.
 *
 * Threading: an sst_builder belongs to one thread.  An sst_table is read-only
 * after sst_table_open and keeps no scratch state, so one sst_table may be
 * shared by the threads of a process (reads use pread); each caller passes
 * its own block_buf.  An sst_table is process-local (it holds an fd).
 */
#ifndef LSM_SST_H
#define LSM_SST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "entry.h"
#include "lsm.h"
#include "table_meta.h"

#define SST_MAGIC            UINT64_C(0x31545353574f4c46)  /* "FLOWSST1" little-endian */
#define SST_FORMAT_VERSION   2u
/* Version of a table whose entries all carry one seq (see sst_footer). */
#define SST_FORMAT_VERSION_UNIFORM_SEQ 3u
/* Flag in a block's count word: offsets are u16 (see sst_block.c). */
#define SST_OFFSETS_U16      0x80000000u
#define SST_TRAILER_SIZE     13u          /* kind u8 + ulen u32 + checksum u64 */
#define SST_FOOTER_SIZE      261u         /* see SST_FORMAT.md */
#define SST_MIN_BLOCK_SIZE   64u
#define SST_MAX_BLOCK_SIZE   (64u << 20)  /* limit on sst_options.block_size */
#define SST_MAX_BLOCK_LEN    (1u << 30)   /* limit on any decoded block */
#define SST_INDEX_VALUE_SIZE 28u          /* min_ts, max_ts, offset, size */

enum sst_compression {
    SST_RAW = 0,
    SST_LZ4 = 1
};

typedef struct sst_options {
    size_t block_size;           /* target uncompressed data-block bytes */
    uint32_t bloom_bits_per_key; /* 1..32 */
} sst_options;

/* Stored bytes of one block in the file, trailer included. */
typedef struct sst_handle {
    uint64_t offset;
    uint32_t size;
} sst_handle;

/* ------------------------------------------------------------- builder */

typedef struct sst_builder sst_builder;

/* Creates (truncates) path.  LSM_INVALID on bad options. */
lsm_status sst_builder_open(const char *path, uint64_t file_no, const sst_options *opt,
                            sst_builder **out);
/* PUT or DELETE entries, strictly increasing by entry_compare; LSM_INVALID
 * otherwise, LSM_TOO_LARGE for a key or value over the engine limits.  The
 * entry's bytes are copied; the caller may reuse them on return. */
lsm_status sst_builder_add(sst_builder *b, const lsm_entry *e);
/* ENTRY_RANGE_DELETE entries (key = start, value = end, start < end), any
 * order; stored sorted by (start asc, seq desc). */
lsm_status sst_builder_add_range_tombstone(sst_builder *b, const lsm_entry *e);
uint64_t sst_builder_entries(const sst_builder *b);
/* Bytes written to the file so far (excludes the block being filled). */
uint64_t sst_builder_file_size(const sst_builder *b);
/* Writes the last data block, filter, tombstones, index and footer; fsyncs
 * and closes the file (the caller fsyncs the directory); fills *meta; frees
 * b whatever the outcome.  On failure the file is unlinked. */
lsm_status sst_builder_finish(sst_builder *b, table_meta *meta);
/* Closes, unlinks and frees. NULL is a no-op. */
void sst_builder_abandon(sst_builder *b);
/* Makes the table a uniform-seq one: every point entry reads back with seq
 * `seq` whatever its stored seq (entries are added with seq 0, before the
 * seq is known: a table built while a transaction is still writing).  Valid
 * only for point entries in strictly increasing (key, ts) order and no range
 * tombstones (LSM_INVALID otherwise); call before finish. */
lsm_status sst_builder_set_uniform_seq(sst_builder *b, uint64_t seq);
/* fdatasyncs what has been written so far, so that finish's fsync has only
 * the tail left. */
lsm_status sst_builder_sync(sst_builder *b);

/* -------------------------------------------------------------- reader */

typedef struct sst_table sst_table;   /* process-local: fd, path, footer */

/* Opens path and verifies the footer (size, magic, version, checksum,
 * handles inside the file).  LSM_CORRUPT naming the file otherwise. */
lsm_status sst_table_open(const char *path, uint64_t file_no, sst_table **out);
void sst_table_close(sst_table *t);
const table_meta *sst_table_meta(const sst_table *t);
const char *sst_table_path(const sst_table *t);
sst_handle sst_table_index_handle(const sst_table *t);
sst_handle sst_table_filter_handle(const sst_table *t);
sst_handle sst_table_tombstone_handle(const sst_table *t);
/* The seq every point entry of a uniform-seq table carries, else 0: readers
 * decoding the table's entries replace the stored seq by it when nonzero. */
uint64_t sst_table_uniform_seq(const sst_table *t);

/* A growable byte buffer, reused across reads.  Zero-initialise it. */
typedef struct block_buf {
    uint8_t *data;
    size_t len, cap;
} block_buf;
void block_buf_free(block_buf *b);
/* Ensures cap >= need (len unchanged). */
lsm_status block_buf_reserve(block_buf *b, size_t need);

/* preads the stored block, verifies its checksum (if verify), decompresses
 * into out->data[0..out->len).  Thread-safe: the compressed bytes are staged
 * in out itself (no scratch inside sst_table), so out must not be shared.
 * LSM_CORRUPT (naming file and offset) on any mismatch, LSM_IO on I/O error. */
lsm_status sst_read_block(sst_table *t, sst_handle h, bool verify, block_buf *out);

/* --------------------------------------------------------------- blocks */

/* A view over one decoded block; valid while its bytes are. */
typedef struct sst_block {
    const uint8_t *data;
    size_t len;
    uint32_t count;
    const uint8_t *offsets;   /* count little-endian u16 or u32, ascending */
    unsigned offset_width;    /* 2 or 4 bytes */
} sst_block;

/* Validates the offset array (in range, strictly ascending). */
lsm_status sst_block_parse(const uint8_t *data, size_t len, sst_block *out);
/* O(1) view over bytes that already passed sst_block_parse (e.g. a cached
 * copy validated when it was read from disk). */
void sst_block_parse_trusted(const uint8_t *data, size_t len, sst_block *out);
/* Decodes entry i; key and value point into the block.  LSM_CORRUPT if
 * malformed (i out of range included). */
lsm_status sst_block_entry(const sst_block *b, uint32_t i, lsm_entry *out);
/* First i whose (key, ts) >= (key, ts) of the target, i.e. the newest
 * version of that (key, ts); count if none.  Assumes the block is sorted; a
 * malformed entry compares greater than any target (sst_block_entry then
 * reports it). A prefix seek passes (prefix, INT64_MIN). */
uint32_t sst_block_seek(const sst_block *b, const uint8_t *key, size_t klen, int64_t ts);
/* Entry i's key and ts only (cheaper than sst_block_entry); false if i is
 * out of range or the entry is malformed. */
bool sst_block_key_ts(const sst_block *b, uint32_t i, const uint8_t **key, uint32_t *klen,
                      int64_t *ts);

/* Index block: one entry per data block, in file order. */
typedef struct sst_index_entry {
    const uint8_t *last_key;
    uint32_t last_key_len;
    int64_t last_ts;          /* (last_key, last_ts): the block's last entry */
    int64_t min_ts, max_ts;   /* over the block's entries */
    sst_handle handle;
} sst_index_entry;
lsm_status sst_index_entry_at(const sst_block *index, uint32_t i, sst_index_entry *out);
/* First block whose last (key, ts) >= target; count if none. */
uint32_t sst_index_seek(const sst_block *index, const uint8_t *key, size_t klen, int64_t ts);

/* ---------------------------------------------- encoding (builder side) */

/* Bytes entry e takes in a block (offset slot not included). */
size_t sst_entry_encoded_len(const lsm_entry *e);
/* Encodes e at p (sst_entry_encoded_len(e) bytes); returns bytes written. */
size_t sst_entry_encode(uint8_t *p, const lsm_entry *e);

/* Accumulates one block: entries in `data`, their offsets in `offsets`. */
typedef struct sst_block_writer {
    block_buf data;
    block_buf offsets;   /* u32 per entry */
    uint32_t count;
} sst_block_writer;
lsm_status sst_block_writer_add(sst_block_writer *w, const lsm_entry *e);
/* Bytes the block takes once finished. */
size_t sst_block_writer_size(const sst_block_writer *w);
/* Appends the offset array and count to w->data; the block is then
 * w->data.data[0..w->data.len). */
lsm_status sst_block_writer_finish(sst_block_writer *w);
void sst_block_writer_reset(sst_block_writer *w);
void sst_block_writer_free(sst_block_writer *w);

/* ------------------------------------------------------ footer codec */

typedef struct sst_footer {
    uint32_t version;          /* SST_FORMAT_VERSION, or ..._UNIFORM_SEQ */
    bool uniform_seq;          /* point entries' seq is meta.max_seq */
    sst_handle index, filter, tombstones;
    table_meta meta;   /* file_no and file_size are not stored */
} sst_footer;

void sst_footer_encode(const sst_footer *f, uint8_t out[SST_FOOTER_SIZE]);
/* Checks magic, version, checksum and field ranges; path names the file in
 * the message. */
lsm_status sst_footer_decode(const uint8_t in[SST_FOOTER_SIZE], const char *path,
                             sst_footer *f);

#endif /* LSM_SST_H */
