/* batch.c — building, decoding and expiry resolution of write batches (batch.h). */
#include "batch.h"

#include <stdlib.h>

#include "coding.h"
#include "status.h"

#define BATCH_INITIAL_CAP 256

/* Worst-case encoded size of an op's fixed part: type, two varint lengths,
 * ts, expire_at. */
#define BATCH_OP_OVERHEAD (1 + 5 + 5 + 8 + 8)

lsm_batch *lsm_batch_new(void)
{
    lsm_batch *b = calloc(1, sizeof *b);
    if (b)
        b->ttl_secs = -1;
    return b;
}

void lsm_batch_free(lsm_batch *b)
{
    if (!b)
        return;
    free(b->buf);
    free(b);
}

/* Drops every op and resets TTL and tag to their defaults, so a reused batch
 * never carries a previous transaction's tag.  Keeps the buffer. */
void lsm_batch_clear(lsm_batch *b)
{
    if (!b)
        return;
    b->len = 0;
    b->count = 0;
    b->unresolved = 0;
    b->ttl_secs = -1;
    b->tag = 0;
}

void lsm_batch_set_ttl(lsm_batch *b, int64_t ttl_secs)
{
    if (b)
        b->ttl_secs = ttl_secs;
}

void lsm_batch_set_tag(lsm_batch *b, uint64_t tag)
{
    if (b)
        b->tag = tag;
}

size_t lsm_batch_count(const lsm_batch *b) { return b ? b->count : 0; }
size_t lsm_batch_bytes(const lsm_batch *b) { return b ? b->len : 0; }

/* Makes room for `need` more bytes (amortized doubling). */
static lsm_status batch_reserve(lsm_batch *b, size_t need)
{
    if (b->count == UINT32_MAX)
        return lsm_fail(LSM_TOO_LARGE, "batch: more than %u operations", UINT32_MAX);
    if (need > BATCH_MAX_BYTES - b->len)
        return lsm_fail(LSM_TOO_LARGE, "batch: body would exceed %u bytes", BATCH_MAX_BYTES);
    if (b->len + need <= b->cap)
        return LSM_OK;
    size_t cap = b->cap ? b->cap : BATCH_INITIAL_CAP;
    while (cap < b->len + need)
        cap *= 2;
    uint8_t *buf = realloc(b->buf, cap);
    if (!buf)
        return lsm_fail(LSM_NO_MEMORY, "batch: cannot grow buffer to %zu bytes", cap);
    b->buf = buf;
    b->cap = cap;
    return LSM_OK;
}

static lsm_status check_key(const char *what, const void *key, size_t len)
{
    if (len == 0)
        return lsm_fail(LSM_INVALID, "batch: empty %s", what);
    if (len > LSM_MAX_KEY_SIZE)
        return lsm_fail(LSM_TOO_LARGE, "batch: %s of %zu bytes exceeds LSM_MAX_KEY_SIZE (%u)",
                        what, len, LSM_MAX_KEY_SIZE);
    if (!key)
        return lsm_fail(LSM_INVALID, "batch: %s is NULL", what);
    return LSM_OK;
}

static uint8_t *append_bytes(uint8_t *p, const void *src, size_t len)
{
    if (len)
        memcpy(p, src, len);
    return p + len;
}

/* The limits of a PUT (shared by lsm_batch_put_expiring and ops given in
 * place). */
static lsm_status check_put(const void *key, size_t key_len, const void *value, size_t value_len,
                            int64_t expire_at)
{
    lsm_status st = check_key("key", key, key_len);
    if (st != LSM_OK)
        return st;
    if (value_len > LSM_MAX_VALUE_SIZE)
        return lsm_fail(LSM_TOO_LARGE, "batch: value of %zu bytes exceeds LSM_MAX_VALUE_SIZE (%u)",
                        value_len, LSM_MAX_VALUE_SIZE);
    if (value_len && !value)
        return lsm_fail(LSM_INVALID, "batch: value is NULL");
    if (expire_at < 0)
        return lsm_fail(LSM_INVALID, "batch: expire_at %lld is negative", (long long) expire_at);
    return LSM_OK;
}

/* The limits of a RANGE_DELETE [start, end). */
static lsm_status check_range(const void *start, size_t start_len, const void *end, size_t end_len)
{
    lsm_status st = check_key("range start", start, start_len);
    if (st != LSM_OK || (st = check_key("range end", end, end_len)) != LSM_OK)
        return st;
    if (key_compare(start, start_len, end, end_len) >= 0)
        return lsm_fail(LSM_INVALID, "batch: delete_range start must sort before end");
    return LSM_OK;
}

lsm_status lsm_batch_put_expiring(lsm_batch *b, const void *key, size_t key_len, int64_t ts,
                                  int64_t expire_at, const void *value, size_t value_len)
{
    if (!b)
        return lsm_fail(LSM_INVALID, "batch: NULL batch");
    lsm_status st = check_put(key, key_len, value, value_len, expire_at);
    if (st != LSM_OK || (st = batch_reserve(b, BATCH_OP_OVERHEAD + key_len + value_len)) != LSM_OK)
        return st;

    bool unresolved = expire_at == 0;
    uint8_t *p = b->buf + b->len;
    *p++ = (uint8_t) (ENTRY_PUT | (unresolved ? BATCH_EXPIRY_UNRESOLVED : 0));
    p += put_varint(p, key_len);
    p += put_varint(p, value_len);
    put_i64(p, ts);
    put_i64(p + 8, expire_at);
    p = append_bytes(p + 16, key, key_len);
    p = append_bytes(p, value, value_len);
    b->len = (size_t) (p - b->buf);
    b->count++;
    b->unresolved += unresolved;
    return LSM_OK;
}

lsm_status lsm_batch_put(lsm_batch *b, const void *key, size_t key_len, int64_t ts,
                         const void *value, size_t value_len)
{
    return lsm_batch_put_expiring(b, key, key_len, ts, 0, value, value_len);
}

lsm_status lsm_batch_delete(lsm_batch *b, const void *key, size_t key_len, int64_t ts)
{
    if (!b)
        return lsm_fail(LSM_INVALID, "batch: NULL batch");
    lsm_status st = check_key("key", key, key_len);
    if (st != LSM_OK || (st = batch_reserve(b, BATCH_OP_OVERHEAD + key_len)) != LSM_OK)
        return st;
    uint8_t *p = b->buf + b->len;
    *p++ = ENTRY_DELETE;
    p += put_varint(p, key_len);
    put_i64(p, ts);
    p = append_bytes(p + 8, key, key_len);
    b->len = (size_t) (p - b->buf);
    b->count++;
    return LSM_OK;
}

lsm_status lsm_batch_delete_range(lsm_batch *b, const void *start, size_t start_len,
                                  const void *end, size_t end_len)
{
    if (!b)
        return lsm_fail(LSM_INVALID, "batch: NULL batch");
    lsm_status st = check_range(start, start_len, end, end_len);
    if (st != LSM_OK || (st = batch_reserve(b, BATCH_OP_OVERHEAD + start_len + end_len)) != LSM_OK)
        return st;
    uint8_t *p = b->buf + b->len;
    *p++ = ENTRY_RANGE_DELETE;
    p += put_varint(p, start_len);
    p += put_varint(p, end_len);
    p = append_bytes(p, start, start_len);
    p = append_bytes(p, end, end_len);
    b->len = (size_t) (p - b->buf);
    b->count++;
    return LSM_OK;
}

/* ---------------------------------------------------------------- decoding */

/* One decoded op plus where its expire_at lives (PUT only), for patching. */
typedef struct batch_op {
    lsm_entry e;
    size_t expire_at_offset;   /* offset in the body; PUT only */
    bool unresolved;
} batch_op;

static lsm_status malformed(size_t off, const char *why)
{
    return lsm_fail(LSM_CORRUPT, "batch: malformed op at body offset %zu: %s", off, why);
}

/* Reads a length varint bounded by `max`. */
static const uint8_t *get_len(const uint8_t *p, const uint8_t *end, uint32_t max, uint32_t *out)
{
    uint64_t v;
    p = get_varint(p, end, &v);
    if (!p || v > max)
        return NULL;
    *out = (uint32_t) v;
    return p;
}

/* Takes `len` bytes of [*p, end) as a slice; false if too few remain. */
static bool take_bytes(const uint8_t **p, const uint8_t *end, uint32_t len, const uint8_t **out)
{
    if ((size_t) (end - *p) < len)
        return false;
    *out = *p;
    *p += len;
    return true;
}

/* Decodes the op at body[*off] into *op and advances *off.  Checks every
 * invariant in batch.h except expiry resolution. */
static lsm_status decode_op(const uint8_t *body, size_t len, size_t *off, batch_op *op)
{
    const uint8_t *p = body + *off, *end = body + len;
    size_t at = *off;
    uint8_t type_byte = *p++;
    memset(op, 0, sizeof *op);
    op->e.type = type_byte & (uint8_t) ~BATCH_EXPIRY_UNRESOLVED;
    op->unresolved = (type_byte & BATCH_EXPIRY_UNRESOLVED) != 0;
    if (op->unresolved && op->e.type != ENTRY_PUT)
        return malformed(at, "expiry flag on a non-put");

    switch (op->e.type) {
    case ENTRY_PUT:
        if (!(p = get_len(p, end, LSM_MAX_KEY_SIZE, &op->e.key_len)) ||
            !(p = get_len(p, end, LSM_MAX_VALUE_SIZE, &op->e.value_len)))
            return malformed(at, "bad key or value length");
        if (end - p < 16)
            return malformed(at, "truncated ts/expire_at");
        op->e.ts = get_i64(p);
        op->e.expire_at = get_i64(p + 8);
        op->expire_at_offset = (size_t) (p + 8 - body);
        p += 16;
        if (op->e.expire_at < 0)
            return malformed(at, "negative expire_at");
        if (!take_bytes(&p, end, op->e.key_len, &op->e.key) ||
            !take_bytes(&p, end, op->e.value_len, &op->e.value))
            return malformed(at, "truncated key or value");
        break;
    case ENTRY_DELETE:
        if (!(p = get_len(p, end, LSM_MAX_KEY_SIZE, &op->e.key_len)))
            return malformed(at, "bad key length");
        if (end - p < 8)
            return malformed(at, "truncated ts");
        op->e.ts = get_i64(p);
        p += 8;
        if (!take_bytes(&p, end, op->e.key_len, &op->e.key))
            return malformed(at, "truncated key");
        break;
    case ENTRY_RANGE_DELETE:
        if (!(p = get_len(p, end, LSM_MAX_KEY_SIZE, &op->e.key_len)) ||
            !(p = get_len(p, end, LSM_MAX_KEY_SIZE, &op->e.value_len)))
            return malformed(at, "bad range bound length");
        if (!take_bytes(&p, end, op->e.key_len, &op->e.key) ||
            !take_bytes(&p, end, op->e.value_len, &op->e.value))
            return malformed(at, "truncated range bounds");
        if (op->e.value_len == 0 ||
            key_compare(op->e.key, op->e.key_len, op->e.value, op->e.value_len) >= 0)
            return malformed(at, "range start does not sort before end");
        break;
    default:
        return malformed(at, "unknown op type");
    }
    if (op->e.key_len == 0)
        return malformed(at, "empty key");
    *off = (size_t) (p - body);
    return LSM_OK;
}

lsm_status batch_iterate(const uint8_t *body, size_t len, batch_visit_fn fn, void *arg)
{
    if (len && !body)
        return lsm_fail(LSM_INVALID, "batch: NULL body of %zu bytes", len);
    size_t off = 0;
    while (off < len) {
        batch_op op;
        size_t at = off;
        lsm_status st = decode_op(body, len, &off, &op);
        if (st != LSM_OK)
            return st;
        if (op.unresolved)
            return malformed(at, "put expiry never resolved");
        if (fn && (st = fn(&op.e, arg)) != LSM_OK)
            return st;
    }
    return LSM_OK;
}

static lsm_status count_one(const lsm_entry *e, void *arg)
{
    (void) e;
    uint32_t *n = arg;
    if (*n == UINT32_MAX)
        return lsm_fail(LSM_CORRUPT, "batch: more than %u operations", UINT32_MAX);
    (*n)++;
    return LSM_OK;
}

lsm_status batch_count_ops(const uint8_t *body, size_t len, uint32_t *count)
{
    *count = 0;
    return batch_iterate(body, len, count_one, count);
}

static int64_t resolved_expiry(int64_t ttl, int64_t now)
{
    if (ttl <= 0)
        return 0;
    if (now > INT64_MAX - ttl)
        return INT64_MAX;
    int64_t at = now + ttl;
    return at >= 1 ? at : 1;   /* 0 would mean "never" */
}

void batch_resolve_expiry(lsm_batch *b, int64_t now, int64_t default_ttl_secs)
{
    if (!b || b->unresolved == 0)
        return;
    int64_t expire_at = resolved_expiry(b->ttl_secs < 0 ? default_ttl_secs : b->ttl_secs, now);
    size_t off = 0;
    while (off < b->len && b->unresolved > 0) {
        size_t at = off;
        batch_op op;
        if (decode_op(b->buf, b->len, &off, &op) != LSM_OK)
            return;   /* unreachable: the body was built by lsm_batch_* */
        if (!op.unresolved)
            continue;
        put_i64(b->buf + op.expire_at_offset, expire_at);
        b->buf[at] = ENTRY_PUT;
        b->unresolved--;
    }
}

/* ------------------------------------------------------ ops given in place */

lsm_status batch_check_op(const lsm_write_op *op, size_t op_index)
{
    switch (op->kind) {
    case LSM_OP_PUT:
        return check_put(op->key, op->key_len, op->value, op->value_len, op->expire_at);
    case LSM_OP_DELETE:
        return check_key("key", op->key, op->key_len);
    case LSM_OP_DELETE_RANGE:
        return check_range(op->key, op->key_len, op->value, op->value_len);
    }
    return lsm_fail(LSM_INVALID, "batch: op %zu has unknown kind %d", op_index, (int) op->kind);
}

size_t batch_op_bound(const lsm_write_op *op)
{
    return BATCH_OP_OVERHEAD + op->key_len + op->value_len;
}

lsm_status batch_append_ops(lsm_batch *b, const lsm_write_op *ops, size_t n)
{
    lsm_status st = LSM_OK;
    for (size_t i = 0; i < n && st == LSM_OK; i++) {
        const lsm_write_op *op = &ops[i];
        switch (op->kind) {
        case LSM_OP_PUT:
            st = lsm_batch_put_expiring(b, op->key, op->key_len, op->ts, op->expire_at,
                                        op->value, op->value_len);
            break;
        case LSM_OP_DELETE:
            st = lsm_batch_delete(b, op->key, op->key_len, op->ts);
            break;
        case LSM_OP_DELETE_RANGE:
            st = lsm_batch_delete_range(b, op->key, op->key_len, op->value, op->value_len);
            break;
        default:
            st = batch_check_op(op, i);
        }
    }
    return st;
}
