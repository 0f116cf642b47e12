/* region.c — sizing and initialising the shared region (layout in region.h). */
#include "region.h"

#include <string.h>

#include "block_cache.h"
#include "status.h"

#define ALIGN64(x) (((x) + 63u) & ~(size_t) 63u)

typedef struct region_layout {
    size_t off_memtables, memtable_stride, n_mem;
    size_t off_tables, off_versions, version_stride, n_versions;
    size_t off_inflight, off_data_cache, off_index_cache, total;
} region_layout;

static void compute_layout(const lsm_config *cfg, region_layout *l)
{
    size_t off = ALIGN64(sizeof(region_header));
    l->n_mem = 1 + cfg->max_frozen_memtables;
    l->off_memtables = off;
    l->memtable_stride = ALIGN64(sizeof(mem_slot)) + ALIGN64(memtable_footprint(cfg->memtable_size));
    off += l->n_mem * l->memtable_stride;
    l->off_tables = off;
    off += ALIGN64(sizeof(table_slot) * cfg->max_tables);
    /* One version per pinned snapshot, plus the current one and slack for
     * versions being built or waiting for their last reader. */
    l->n_versions = cfg->max_snapshots + 8;
    l->version_stride = ALIGN64(sizeof(version) + sizeof(uint32_t) * cfg->max_tables);
    l->off_versions = off;
    off += l->n_versions * l->version_stride;
    l->off_inflight = off;
    off += ALIGN64(sizeof(inflight_slot) * cfg->max_inflight_writes);
    l->off_data_cache = off;
    off += ALIGN64(block_cache_region_size(cfg->block_cache_size, cfg->cache_shards));
    l->off_index_cache = off;
    off += ALIGN64(block_cache_region_size(cfg->index_cache_size, cfg->cache_shards));
    l->total = off;
}

size_t region_size_for(const lsm_config *cfg)
{
    region_layout l;
    compute_layout(cfg, &l);
    return l.total;
}

static int init_shared_mutex(pthread_mutex_t *mu)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    int rc = pthread_mutex_init(mu, &a);
    pthread_mutexattr_destroy(&a);
    return rc;
}

static int init_shared_cond(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
    return rc;
}

static int init_sync_primitives(region_header *h)
{
    pthread_mutex_t *mus[] = {&h->flush_mu, &h->compact_mu, &h->write_mu, &h->manifest_mu, &h->version_mu,
                              &h->inflight_mu, &h->sync_mu, &h->maint_mu};
    for (size_t i = 0; i < sizeof mus / sizeof mus[0]; i++)
        if (init_shared_mutex(mus[i]) != 0)
            return -1;
    if (init_shared_cond(&h->stall_cv) || init_shared_cond(&h->inflight_cv) ||
        init_shared_cond(&h->maint_cv))
        return -1;
    return 0;
}

static void init_memtable_slots(region_header *h, const lsm_config *cfg)
{
    for (uint32_t i = 0; i < h->n_mem_slots; i++) {
        mem_slot *s = region_mem_slot(h, i);
        memset(s, 0, sizeof *s);
        s->offset = h->off_memtables + (uint64_t) i * h->memtable_stride + ALIGN64(sizeof(mem_slot));
        s->state = SLOT_FREE;
        memtable_init(region_memtable(h, i), cfg->memtable_size);
    }
}

lsm_status region_init(region_header *h, size_t size, const lsm_config *cfg)
{
    region_layout l;
    compute_layout(cfg, &l);
    if (size < l.total)
        return lsm_fail(LSM_INVALID, "region of %zu bytes is smaller than the %zu the config needs",
                        size, l.total);
    memset(h, 0, sizeof *h);
    h->magic = REGION_MAGIC;
    h->format_version = REGION_VERSION;
    h->total_size = size;
    h->cfg = *cfg;
    h->off_memtables = l.off_memtables;
    h->memtable_stride = l.memtable_stride;
    h->n_mem_slots = (uint32_t) l.n_mem;
    h->off_tables = l.off_tables;
    h->off_versions = l.off_versions;
    h->version_stride = l.version_stride;
    h->n_versions = (uint32_t) l.n_versions;
    h->off_inflight = l.off_inflight;
    h->off_data_cache = l.off_data_cache;
    h->off_index_cache = l.off_index_cache;
    if (init_sync_primitives(h) != 0)
        return lsm_fail(LSM_IO, "cannot initialise process-shared locks");
    init_memtable_slots(h, cfg);
    memset(region_table(h, 0), 0, sizeof(table_slot) * cfg->max_tables);
    for (uint32_t i = 0; i < h->n_versions; i++)
        memset(region_version(h, i), 0, h->version_stride);
    memset(region_inflight(h, 0), 0, sizeof(inflight_slot) * cfg->max_inflight_writes);
    lsm_status st = block_cache_init(region_at(h, h->off_data_cache), cfg->block_cache_size,
                                     cfg->cache_shards);
    if (st == LSM_OK)
        st = block_cache_init(region_at(h, h->off_index_cache), cfg->index_cache_size,
                              cfg->cache_shards);
    if (st != LSM_OK)
        return st;
    histogram_init(&h->stats.write_latency);
    histogram_init(&h->stats.read_latency);
    histogram_init(&h->stats.flush_latency);
    atomic_store(&h->state, REGION_INIT);
    return LSM_OK;
}
