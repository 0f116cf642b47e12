/*
 * prefault.c — memory blocks touched ahead of use by a helper thread.
 *
 * A bulk load buffers hundreds of megabytes of writes (xact.c's arena), all
 * of it memory the backend never touched before: in a profile of a
 * million-row COPY, the page faults of that buffer took about a fifth of
 * the backend's time.  A prefaulter takes blocks the backend allocated
 * but has not used yet, writes one byte per page of each on a thread of
 * its own, so the faults are taken on another core, and hands each block
 * back once touched.
 *
 * Blocks move through a ring of PREFAULT_AHEAD slots; `submitted`,
 * `touched` and `taken` count blocks (slot = count % PREFAULT_AHEAD) and
 * taken <= touched <= submitted <= taken + PREFAULT_AHEAD holds: the thread
 * touches only blocks submitted and not yet taken, the backend uses only
 * blocks taken.
 *
 * Besides blocks, one range of memory the backend is already writing into
 * (the unused tail of a growing array) can be touched, first: there each
 * page is touched with an atomic add of zero, which leaves whatever the
 * backend wrote in place.  The backend forgets the range (waiting for the
 * thread to leave it) before it frees or moves that memory.
 *
 * The thread calls no Postgres function and runs with every signal
 * blocked; the blocks stay the caller's, who must stop the prefaulter
 * before freeing any block it submitted.
 */
#include "postgres.h"

#include <pthread.h>
#include <signal.h>

#include "flowdb.h"

#define PREFAULT_AHEAD 8
#define PAGE_BYTES 4096

struct FlowdbPrefaulter
{
	pthread_t	thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t		block_size;
	uint8	   *block[PREFAULT_AHEAD];
	uint64		submitted,
				touched,
				taken;
	bool		stopping;
	uint8	   *range;			/* pending or being touched; NULL if none */
	size_t		range_len;
	bool		range_busy;		/* the thread is touching it */
	bool		range_cancel;	/* read by the thread without the lock */
};

static void
touch_block(uint8 *block, size_t size)
{
	volatile uint8 *p = block;

	for (size_t off = 0; off < size; off += PAGE_BYTES)
		p[off] = 0;				/* the contents are undefined until used */
	p[size - 1] = 0;
}

/* Touches the range without changing a byte; stops early when cancelled. */
static void
touch_range(FlowdbPrefaulter *p, uint8 *start, size_t len)
{
	for (size_t off = 0; off < len; off += PAGE_BYTES)
	{
		if (off % (64 * PAGE_BYTES) == 0 &&
			__atomic_load_n(&p->range_cancel, __ATOMIC_RELAXED))
			return;
		(void) __atomic_fetch_add(start + off, 0, __ATOMIC_RELAXED);
	}
}

static void *
prefault_main(void *arg)
{
	FlowdbPrefaulter *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;)
	{
		uint8	   *block;

		while (p->touched == p->submitted && p->range == NULL && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stopping)
			break;
		if (p->range)
		{
			uint8	   *start = p->range;
			size_t		len = p->range_len;

			p->range_busy = true;
			pthread_mutex_unlock(&p->mu);
			touch_range(p, start, len);
			pthread_mutex_lock(&p->mu);
			p->range_busy = false;
			p->range = NULL;
			pthread_cond_broadcast(&p->cv);
			continue;
		}
		block = p->block[p->touched % PREFAULT_AHEAD];
		pthread_mutex_unlock(&p->mu);
		touch_block(block, p->block_size);
		pthread_mutex_lock(&p->mu);
		p->touched++;
		pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

FlowdbPrefaulter *
flowdb_prefault_start(size_t block_size)
{
	FlowdbPrefaulter *p = calloc(1, sizeof(FlowdbPrefaulter));
	sigset_t	all,
				old;
	int			rc;

	if (p == NULL)
		return NULL;
	p->block_size = block_size;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&p->thread, NULL, prefault_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
	{
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv);
		free(p);
		return NULL;
	}
	return p;
}

bool
flowdb_prefault_has_room(const FlowdbPrefaulter *p)
{
	return p->submitted - p->taken < PREFAULT_AHEAD;	/* only this thread
														 * changes either */
}

void
flowdb_prefault_submit(FlowdbPrefaulter *p, uint8 *block)
{
	Assert(flowdb_prefault_has_room(p));
	pthread_mutex_lock(&p->mu);
	p->block[p->submitted % PREFAULT_AHEAD] = block;
	p->submitted++;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

uint8 *
flowdb_prefault_take(FlowdbPrefaulter *p)
{
	uint8	   *block;

	Assert(p->taken < p->submitted);
	pthread_mutex_lock(&p->mu);
	while (p->touched == p->taken)
		pthread_cond_wait(&p->cv, &p->mu);
	block = p->block[p->taken % PREFAULT_AHEAD];
	p->taken++;
	pthread_mutex_unlock(&p->mu);
	return block;
}

void
flowdb_prefault_forget_range(FlowdbPrefaulter *p)
{
	pthread_mutex_lock(&p->mu);
	__atomic_store_n(&p->range_cancel, true, __ATOMIC_RELAXED);
	while (p->range_busy)
		pthread_cond_wait(&p->cv, &p->mu);
	p->range = NULL;
	__atomic_store_n(&p->range_cancel, false, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&p->mu);
}

void
flowdb_prefault_range(FlowdbPrefaulter *p, uint8 *start, size_t len)
{
	flowdb_prefault_forget_range(p);
	pthread_mutex_lock(&p->mu);
	p->range = start;
	p->range_len = len;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void
flowdb_prefault_stop(FlowdbPrefaulter *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	__atomic_store_n(&p->range_cancel, true, __ATOMIC_RELAXED);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thread, NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}
