/*
 * batch.h — a write batch: an encoded list of operations, and its decoder.
 *
 * A batch is process-local.  Its body (batch_body()) is exactly the payload of
 * one WAL BATCH record; the op count, tag and sequence numbers travel in the
 * WAL record header, not in the body.
 *
 * Body: a concatenation of ops, each starting with one type byte:
 *
 *   PUT           u8 type | varint key_len | varint value_len | i64 ts
 *                 | i64 expire_at | key | value
 *   DELETE        u8 type | varint key_len | i64 ts | key
 *   RANGE_DELETE  u8 type | varint start_len | varint end_len | start | end
 *
 * type is an entry_type (entry.h).  On a PUT, bit 0x80 of the type byte means
 * "expire_at unresolved": the op was added with expire_at 0 and takes the
 * batch TTL.  batch_resolve_expiry() patches those expire_at fields in place
 * (they are fixed-width for that reason) and clears the bit, so the body that
 * reaches the WAL holds absolute expiries only and replay is deterministic.
 *
 * Invariants of a body produced by lsm_batch_*: every key is 1..LSM_MAX_KEY_SIZE
 * bytes, every value <= LSM_MAX_VALUE_SIZE bytes, every range has start < end
 * bytewise, every expire_at >= 0, and len <= BATCH_MAX_BYTES.
 * batch_iterate() checks all of these on any input.
 */
#ifndef LSM_BATCH_H
#define LSM_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "entry.h"
#include "lsm.h"

/* Largest body a batch may grow to (also bounds one WAL payload). */
#define BATCH_MAX_BYTES (1u << 30)

/* Type-byte flag on a PUT whose expire_at still awaits the batch TTL. */
#define BATCH_EXPIRY_UNRESOLVED 0x80u

struct lsm_batch {
    uint8_t *buf;          /* body bytes [0, len); capacity cap */
    size_t len, cap;
    uint32_t count;        /* ops in the body */
    uint32_t unresolved;   /* PUTs carrying BATCH_EXPIRY_UNRESOLVED */
    int64_t ttl_secs;      /* < 0: engine default; 0: never; > 0: seconds */
    uint64_t tag;          /* opaque, stored in the WAL record header */
};

/*
 * Called once per op in body order.  e->seq is 0 (the caller assigns
 * first_seq + index); for RANGE_DELETE, key/value are start/end.  e's
 * pointers are slices of the body.  A status other than LSM_OK stops the
 * iteration and is returned.
 */
typedef lsm_status (*batch_visit_fn)(const lsm_entry *e, void *arg);

/* Decodes and validates body [0, len); LSM_CORRUPT on anything malformed
 * (including a PUT whose expiry was never resolved).  Validation is per op:
 * ops before a malformed one have already been visited. */
lsm_status batch_iterate(const uint8_t *body, size_t len, batch_visit_fn fn, void *arg);

/* Counts the ops of a body, validating it like batch_iterate. */
lsm_status batch_count_ops(const uint8_t *body, size_t len, uint32_t *count);

/*
 * Rewrites every unresolved expire_at to its absolute value:
 *   ttl = b->ttl_secs < 0 ? default_ttl_secs : b->ttl_secs
 *   expire_at = ttl > 0 ? now + ttl (saturating, at least 1) : 0 (never)
 * Idempotent: resolved ops are left alone, so a retried write keeps the
 * expiries of its first attempt.
 */
void batch_resolve_expiry(lsm_batch *b, int64_t now, int64_t default_ttl_secs);

/* Ops given in place (lsm_write_prepare_ops).  batch_check_op applies the
 * limits lsm_batch_* apply when an op is added (op_index names it in the
 * message); batch_op_bound is an upper bound of its encoded size;
 * batch_append_ops adds ops[0, n) to b with expiries as given (0 = never
 * needs ttl_secs 0 on b). */
lsm_status batch_check_op(const lsm_write_op *op, size_t op_index);
size_t batch_op_bound(const lsm_write_op *op);
lsm_status batch_append_ops(lsm_batch *b, const lsm_write_op *ops, size_t n);

static inline const uint8_t *batch_body(const lsm_batch *b) { return b->buf; }
static inline size_t batch_body_len(const lsm_batch *b) { return b->len; }
static inline uint32_t batch_op_count(const lsm_batch *b) { return b->count; }
static inline uint64_t batch_tag(const lsm_batch *b) { return b->tag; }
static inline int64_t batch_ttl(const lsm_batch *b) { return b->ttl_secs; }
static inline bool batch_needs_resolve(const lsm_batch *b) { return b->unresolved != 0; }

#endif /* LSM_BATCH_H */
