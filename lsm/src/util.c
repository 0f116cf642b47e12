/* util.c — clocks and lock helpers shared by the engine's files. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "status.h"

int64_t db_now_secs(lsm_db *db)
{
    if (db->opts.clock)
        return db->opts.clock(db->opts.clock_arg);
    return (int64_t) time(NULL);
}

int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

void mu_lock(pthread_mutex_t *mu)
{
    pthread_mutex_lock(mu);
}

void mu_unlock(pthread_mutex_t *mu)
{
    pthread_mutex_unlock(mu);
}

bool cv_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, uint32_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long) (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_cond_timedwait(cv, mu, &ts) != ETIMEDOUT;
}

void stats_count_read(lsm_db *db, uint64_t records, uint64_t bytes)
{
    static _Thread_local int stripe = -1;
    region_stats *s = &db->hdr->stats;
    if (stripe < 0)
        stripe = (int) (atomic_fetch_add(&s->next_read_stripe, 1) % READ_STRIPES);
    atomic_fetch_add_explicit(&s->reads[stripe].records, records, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->reads[stripe].bytes, bytes, memory_order_relaxed);
}

void db_wake_maintenance(lsm_db *db)
{
    region_header *h = db->hdr;
    mu_lock(&h->maint_mu);
    h->maint_pending = 1;
    pthread_cond_broadcast(&h->maint_cv);
    mu_unlock(&h->maint_mu);
}
