/* test_batch.c — write batch encoding, validation and expiry resolution. */
#include "batch.h"
#include "testutil.h"

#define MAX_SEEN 64

typedef struct seen {
    lsm_entry e[MAX_SEEN];
    int n;
} seen;

static lsm_status collect(const lsm_entry *e, void *arg)
{
    seen *s = arg;
    if (s->n < MAX_SEEN)
        s->e[s->n] = *e;
    s->n++;
    return LSM_OK;
}

static bool bytes_eq(const uint8_t *p, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(p, s, n) == 0;
}

static void test_round_trip(void)
{
    lsm_batch *b = lsm_batch_new();
    CHECK(b != NULL);
    CHECK(lsm_batch_count(b) == 0 && lsm_batch_bytes(b) == 0);
    CHECK_OK(lsm_batch_put_expiring(b, "k1", 2, -7, 1700000000, "v1", 2));
    CHECK_OK(lsm_batch_delete(b, "k2", 2, INT64_MAX));
    CHECK_OK(lsm_batch_delete_range(b, "a", 1, "ab", 2));
    CHECK_OK(lsm_batch_put_expiring(b, "empty", 5, INT64_MIN, 5, NULL, 0));
    lsm_batch_set_tag(b, 0xfeedULL);
    CHECK(lsm_batch_count(b) == 4);
    CHECK(batch_op_count(b) == 4);
    CHECK(batch_tag(b) == 0xfeed);
    CHECK(!batch_needs_resolve(b));
    CHECK(lsm_batch_bytes(b) == batch_body_len(b) && batch_body_len(b) > 0);

    seen s = {0};
    CHECK_OK(batch_iterate(batch_body(b), batch_body_len(b), collect, &s));
    CHECK(s.n == 4);
    CHECK(s.e[0].type == ENTRY_PUT && bytes_eq(s.e[0].key, s.e[0].key_len, "k1"));
    CHECK(s.e[0].ts == -7 && s.e[0].expire_at == 1700000000 && s.e[0].seq == 0);
    CHECK(bytes_eq(s.e[0].value, s.e[0].value_len, "v1"));
    CHECK(s.e[1].type == ENTRY_DELETE && bytes_eq(s.e[1].key, s.e[1].key_len, "k2"));
    CHECK(s.e[1].ts == INT64_MAX && s.e[1].value_len == 0);
    CHECK(s.e[2].type == ENTRY_RANGE_DELETE && bytes_eq(s.e[2].key, s.e[2].key_len, "a"));
    CHECK(bytes_eq(s.e[2].value, s.e[2].value_len, "ab"));
    CHECK(s.e[3].type == ENTRY_PUT && s.e[3].ts == INT64_MIN && s.e[3].value_len == 0);

    uint32_t n = 0;
    CHECK_OK(batch_count_ops(batch_body(b), batch_body_len(b), &n));
    CHECK(n == 4);

    /* Every strict prefix of the body that cuts an op is malformed. */
    size_t full = batch_body_len(b);
    int cut_rejected = 0, cut_total = 0;
    for (size_t len = 1; len < full; len++) {
        seen t = {0};
        lsm_status st = batch_iterate(batch_body(b), len, collect, &t);
        if (st != LSM_OK) {
            CHECK(st == LSM_CORRUPT);
            cut_rejected++;
        }
        cut_total++;
    }
    CHECK(cut_rejected == cut_total - 3);   /* only the 3 op boundaries decode */

    lsm_batch_clear(b);
    CHECK(lsm_batch_count(b) == 0 && lsm_batch_bytes(b) == 0 && batch_tag(b) == 0);
    CHECK(batch_ttl(b) == -1);
    CHECK_OK(batch_iterate(batch_body(b), batch_body_len(b), collect, &s));
    lsm_batch_free(b);
}

static void test_large_key_and_value(void)
{
    lsm_batch *b = lsm_batch_new();
    size_t vlen = LSM_MAX_VALUE_SIZE;
    uint8_t *big = malloc(vlen);
    CHECK(big != NULL);
    for (size_t i = 0; i < vlen; i++)
        big[i] = (uint8_t) (i * 31);
    CHECK_OK(lsm_batch_put_expiring(b, big, LSM_MAX_KEY_SIZE, 1, 9, big, vlen));
    seen s = {0};
    CHECK_OK(batch_iterate(batch_body(b), batch_body_len(b), collect, &s));
    CHECK(s.n == 1 && s.e[0].key_len == LSM_MAX_KEY_SIZE && s.e[0].value_len == vlen);
    CHECK(memcmp(s.e[0].value, big, vlen) == 0);
    free(big);
    lsm_batch_free(b);
}

static void test_validation(void)
{
    lsm_batch *b = lsm_batch_new();
    static uint8_t big[LSM_MAX_KEY_SIZE + 1];
    CHECK_STATUS(lsm_batch_put(b, "", 0, 1, "v", 1), LSM_INVALID);
    CHECK_STATUS(lsm_batch_delete(b, "", 0, 1), LSM_INVALID);
    CHECK_STATUS(lsm_batch_put(b, big, sizeof big, 1, "v", 1), LSM_TOO_LARGE);
    CHECK_STATUS(lsm_batch_delete(b, big, sizeof big, 1), LSM_TOO_LARGE);
    CHECK_STATUS(lsm_batch_put(b, "k", 1, 1, big, (size_t) LSM_MAX_VALUE_SIZE + 1), LSM_TOO_LARGE);
    CHECK_STATUS(lsm_batch_put_expiring(b, "k", 1, 1, -1, "v", 1), LSM_INVALID);
    CHECK_STATUS(lsm_batch_delete_range(b, "b", 1, "a", 1), LSM_INVALID);
    CHECK_STATUS(lsm_batch_delete_range(b, "a", 1, "a", 1), LSM_INVALID);
    CHECK_STATUS(lsm_batch_delete_range(b, "ab", 2, "a", 1), LSM_INVALID);
    CHECK_STATUS(lsm_batch_delete_range(b, "", 0, "a", 1), LSM_INVALID);
    CHECK_STATUS(lsm_batch_delete_range(b, big, sizeof big, "z", 1), LSM_TOO_LARGE);
    CHECK_STATUS(lsm_batch_put(NULL, "k", 1, 1, "v", 1), LSM_INVALID);
    CHECK(strstr(lsm_errmsg(), "batch") != NULL);
    /* Rejected ops leave the batch untouched. */
    CHECK(lsm_batch_count(b) == 0 && lsm_batch_bytes(b) == 0);
    lsm_batch_free(b);
}

/* Hand-made bodies that the decoder must reject. */
static void test_malformed_bodies(void)
{
    seen s = {0};
    const uint8_t unknown_type[] = {9, 1, 0, 0, 0, 0, 0, 0, 0, 0, 'k'};
    CHECK_STATUS(batch_iterate(unknown_type, sizeof unknown_type, collect, &s), LSM_CORRUPT);
    /* DELETE with empty key */
    const uint8_t empty_key[] = {ENTRY_DELETE, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK_STATUS(batch_iterate(empty_key, sizeof empty_key, collect, &s), LSM_CORRUPT);
    /* RANGE_DELETE with start == end */
    const uint8_t bad_range[] = {ENTRY_RANGE_DELETE, 1, 1, 'a', 'a'};
    CHECK_STATUS(batch_iterate(bad_range, sizeof bad_range, collect, &s), LSM_CORRUPT);
    /* key length over the limit (varint 0x2001 = 8193) */
    const uint8_t long_key[] = {ENTRY_DELETE, 0x81, 0x40, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK_STATUS(batch_iterate(long_key, sizeof long_key, collect, &s), LSM_CORRUPT);
    /* PUT with negative expire_at */
    uint8_t neg[1 + 1 + 1 + 16 + 1] = {ENTRY_PUT, 1, 0};
    memset(neg + 3 + 8, 0xff, 8);
    neg[19] = 'k';
    CHECK_STATUS(batch_iterate(neg, sizeof neg, collect, &s), LSM_CORRUPT);
    CHECK(s.n == 0);
}

static void test_resolve_expiry(void)
{
    lsm_batch *b = lsm_batch_new();
    CHECK_OK(lsm_batch_put(b, "a", 1, 1, "x", 1));                       /* takes TTL */
    CHECK_OK(lsm_batch_put_expiring(b, "b", 1, 1, 123, "y", 1));         /* explicit */
    CHECK_OK(lsm_batch_delete(b, "c", 1, 1));
    CHECK_OK(lsm_batch_put(b, "d", 1, 1, "z", 1));                       /* takes TTL */
    CHECK(batch_needs_resolve(b));
    seen s = {0};
    CHECK_STATUS(batch_iterate(batch_body(b), batch_body_len(b), collect, &s), LSM_CORRUPT);

    /* ttl -1: the engine default applies. */
    batch_resolve_expiry(b, 1000, 60);
    CHECK(!batch_needs_resolve(b));
    s.n = 0;
    CHECK_OK(batch_iterate(batch_body(b), batch_body_len(b), collect, &s));
    CHECK(s.n == 4);
    CHECK(s.e[0].expire_at == 1060 && s.e[1].expire_at == 123 && s.e[3].expire_at == 1060);

    /* Idempotent: a second resolution at a later time changes nothing. */
    batch_resolve_expiry(b, 5000, 60);
    s.n = 0;
    CHECK_OK(batch_iterate(batch_body(b), batch_body_len(b), collect, &s));
    CHECK(s.e[0].expire_at == 1060 && s.e[3].expire_at == 1060);

    /* Batch TTL 0 = never, overriding the engine default. */
    lsm_batch_clear(b);
    lsm_batch_set_ttl(b, 0);
    CHECK_OK(lsm_batch_put(b, "a", 1, 1, "x", 1));
    batch_resolve_expiry(b, 1000, 60);
    s.n = 0;
    CHECK_OK(batch_iterate(batch_body(b), batch_body_len(b), collect, &s));
    CHECK(s.n == 1 && s.e[0].expire_at == 0);

    /* Explicit batch TTL beats the default; saturation at INT64_MAX. */
    lsm_batch_clear(b);
    lsm_batch_set_ttl(b, 10);
    CHECK_OK(lsm_batch_put(b, "a", 1, 1, "x", 1));
    batch_resolve_expiry(b, 1000, 60);
    s.n = 0;
    CHECK_OK(batch_iterate(batch_body(b), batch_body_len(b), collect, &s));
    CHECK(s.e[0].expire_at == 1010);

    lsm_batch_clear(b);
    lsm_batch_set_ttl(b, INT64_MAX);
    CHECK_OK(lsm_batch_put(b, "a", 1, 1, "x", 1));
    batch_resolve_expiry(b, 1000, 0);
    s.n = 0;
    CHECK_OK(batch_iterate(batch_body(b), batch_body_len(b), collect, &s));
    CHECK(s.e[0].expire_at == INT64_MAX);

    /* Engine default 0 = never. */
    lsm_batch_clear(b);
    CHECK_OK(lsm_batch_put(b, "a", 1, 1, "x", 1));
    batch_resolve_expiry(b, 1000, 0);
    s.n = 0;
    CHECK_OK(batch_iterate(batch_body(b), batch_body_len(b), collect, &s));
    CHECK(s.e[0].expire_at == 0);
    lsm_batch_free(b);
}

static lsm_status stop_at_second(const lsm_entry *e, void *arg)
{
    (void) e;
    int *n = arg;
    return ++*n == 2 ? LSM_BUSY : LSM_OK;
}

static void test_callback_error_stops(void)
{
    lsm_batch *b = lsm_batch_new();
    for (int i = 0; i < 5; i++)
        CHECK_OK(lsm_batch_delete(b, "k", 1, i));
    int n = 0;
    CHECK_STATUS(batch_iterate(batch_body(b), batch_body_len(b), stop_at_second, &n), LSM_BUSY);
    CHECK(n == 2);
    lsm_batch_free(b);
}

/* Many small ops: growth keeps every op intact. */
static void test_growth(void)
{
    lsm_batch *b = lsm_batch_new();
    char key[32];
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(key, sizeof key, "key-%06d", i);
        CHECK_OK(lsm_batch_put_expiring(b, key, (size_t) n, i, 1 + i, key, (size_t) n));
    }
    uint32_t count = 0;
    CHECK_OK(batch_count_ops(batch_body(b), batch_body_len(b), &count));
    CHECK(count == 10000 && lsm_batch_count(b) == 10000);
    lsm_batch_free(b);
}

int main(void)
{
    test_round_trip();
    test_large_key_and_value();
    test_validation();
    test_malformed_bodies();
    test_resolve_expiry();
    test_callback_error_stops();
    test_growth();
    return test_report("test_batch");
}
