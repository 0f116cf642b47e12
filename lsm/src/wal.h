/*
 * wal.h — the segmented write-ahead log: record framing, segment files,
 * appends at caller-given offsets, and point-in-time replay.
 *
 * The write position (segment number, offset) lives in the engine's shared
 * region, so this API is stateless over (fd, offset): the engine reserves
 * [offset, offset + wal_record_size(len)) under its own lock, encodes, and
 * writes with file_write_at (file_io.h) / wal_append_frame from whichever process owns the
 * batch.  Format (see WAL_MANIFEST_FORMAT.md), all little-endian:
 *
 *   segment file  <dir>/wal-<seg no, 16 decimal digits>.log
 *   header (32)   u32 magic "FWAL" | u32 version | u64 seg_no
 *                 | u64 prev_last_seq | u64 XXH3_64bits(previous 24 bytes)
 *   prev_last_seq: the highest seq of a BATCH record written before this
 *   segment was started; replay stops before a segment whose predecessor
 *   (replayed in the same run) ended short of it.
 *   record        header (28) | payload | u64 XXH3_64bits(header + payload)
 *   rec. header   u32 payload_len | u32 count | u64 tag | u64 first_seq
 *                 | u8 kind | 3 zero bytes
 *
 * A BATCH record's payload is a batch body (batch.h) of `count` ops with
 * sequence numbers first_seq .. first_seq + count - 1.  An ABORT record has an
 * empty payload and names, by (first_seq, count), a batch to discard.
 */
#ifndef LSM_WAL_H
#define LSM_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lsm.h"

#define WAL_FORMAT_VERSION 1u
#define WAL_SEGMENT_HEADER_SIZE 32u
#define WAL_RECORD_HEADER_SIZE 28u
#define WAL_RECORD_TRAILER_SIZE 8u
#define WAL_MAX_PAYLOAD (1u << 30)          /* = BATCH_MAX_BYTES */
#define WAL_MAX_SEG_NO 9999999999999999ull  /* 16 decimal digits */

enum wal_record_kind {
    WAL_RECORD_BATCH = 1,
    WAL_RECORD_ABORT = 2,
    WAL_RECORD_INGEST = 3    /* payload: u64 file number of the batch's table */
};

/* <dir>/wal-<16 digits>.log into buf; LSM_INVALID if it does not fit or
 * seg_no > WAL_MAX_SEG_NO. */
lsm_status wal_segment_path(char *buf, size_t len, const char *dir, uint64_t seg_no);

/* ------------------------------------------------------------- encoding */

/* Bytes one record with a payload of payload_len takes on disk. */
size_t wal_record_size(size_t payload_len);

/* Contiguous form: dst has wal_record_size(len) bytes.  len <= WAL_MAX_PAYLOAD. */
void wal_encode_record(uint8_t *dst, uint8_t kind, uint64_t tag, uint64_t first_seq,
                       uint32_t count, const uint8_t *payload, size_t len);

/* Two-part form: the header and checksum trailer around a payload that stays
 * where it is; written with wal_append_frame (one pwritev).  The bytes on
 * disk are identical to wal_encode_record's. */
typedef struct wal_frame {
    uint8_t header[WAL_RECORD_HEADER_SIZE];
    uint8_t trailer[WAL_RECORD_TRAILER_SIZE];
} wal_frame;

void wal_frame_record(wal_frame *f, uint8_t kind, uint64_t tag, uint64_t first_seq,
                      uint32_t count, const uint8_t *payload, size_t len);

/* ------------------------------------------------------------- segments */

/* Creates segment seg_no (O_CREAT|O_EXCL), writes its header, fsyncs the file
 * and the directory.  *fd_out is open read-write; *data_start is the offset
 * of the first record.  On failure nothing is left behind. */
lsm_status wal_segment_create(const char *dir, uint64_t seg_no, uint64_t prev_last_seq, int *fd_out,
                              uint64_t *data_start);

/* Opens an existing segment read-write (another process appending) after
 * checking its header; LSM_CORRUPT if the header is bad. */
lsm_status wal_segment_open(const char *dir, uint64_t seg_no, int *fd_out);


/* Writes header, payload and trailer of a framed record at `offset`. */
lsm_status wal_append_frame(int fd, uint64_t offset, const wal_frame *f, const void *payload,
                            size_t len, const char *what_for_errors);

/* fdatasync. */
lsm_status wal_sync(int fd);

/* Writes zero bytes over [from, to).  The engine zero-extends a segment
 * ahead of its appends so that most fdatasyncs flush data only, not a new
 * file size.  Replay treats an all-zero record header followed by zeros to
 * the end of the file as the clean end of the segment. */
lsm_status wal_zero_extend(int fd, uint64_t from, uint64_t to, const char *what_for_errors);

/* Segment numbers in dir, ascending, in a malloc'd array (NULL when *n is 0;
 * caller frees).  Only exact wal-<16 digits>.log names count. */
lsm_status wal_list_segments(const char *dir, uint64_t **segs, size_t *n);

/* Unlinks every segment numbered below seg_no, then fsyncs dir. */
lsm_status wal_delete_segments_below(const char *dir, uint64_t seg_no);

/* --------------------------------------------------------------- replay */

/* payload is valid only during the call. */
typedef lsm_status (*wal_record_fn)(uint8_t kind, uint64_t tag, uint64_t first_seq,
                                    uint32_t count, const uint8_t *payload, size_t len,
                                    void *arg);

typedef struct wal_replay_stats {
    uint64_t records;          /* records handed to the callback */
    uint64_t records_dropped;  /* records at and after the stop point (*) */
    uint64_t bytes_dropped;    /* bytes at and after the stop point */
    uint64_t last_seq;         /* highest seq of a replayed BATCH; 0 if none */
    bool stopped;              /* replay ended early at (stop_seg, stop_offset) */
    uint64_t stop_seg, stop_offset;
    uint64_t max_seg;          /* highest segment number present; 0 if none */
} wal_replay_stats;
/* (*) records_dropped counts record frames still delimitable after the stop
 * point; an undelimitable remainder (torn frame, bad length, bad segment
 * header) counts as one.  Exact unless a length field itself is damaged. */

/*
 * Replays segments >= from_seg in ascending order.  Point-in-time: the first
 * torn or corrupt record ends replay — it and everything after it (the rest of
 * that segment and all later segments) are counted as dropped, never passed
 * to fn.  A segment with a bad header, or a gap in the segment numbers, stops
 * replay at offset 0 of that segment.  Every record is checksum-verified
 * before fn sees it.  Memory: one buffer of max(1 MiB, largest record).
 * Returns an error only for I/O failure or a callback error (returned as is).
 */
lsm_status wal_replay(const char *dir, uint64_t from_seg, wal_record_fn fn, void *arg,
                      wal_replay_stats *st);

/*
 * Discards the log from a replay stop point on: truncates segment seg_no to
 * `offset` (deletes it if offset <= the header size) and deletes every later
 * segment, then fsyncs.  Records before the stop point are kept.  Call after
 * a replay that stopped, before appending new records, so that records written after this
 * recovery are not hidden behind the old damage at the next one.
 */
lsm_status wal_discard_from(const char *dir, uint64_t seg_no, uint64_t offset);

#endif /* LSM_WAL_H */
