/*
 * table_stream.h — a large transaction's table, built by a helper thread
 * while the transaction is still writing (see table_stream.c).
 */
#ifndef LSM_TABLE_STREAM_H
#define LSM_TABLE_STREAM_H

#include <stdint.h>

#include "ingest.h"
#include "lsm.h"
#include "status.h"

/* Stops taking ops and waits for the helper thread to write every op
 * handed to it.  Returns the first error it met (message set), else LSM_OK;
 * *bounds gets the key range of the ops (lo NULL when there were none),
 * *count and *bytes their number and encoded size. */
lsm_status table_stream_drain(lsm_table_stream *s, ingest_run *bounds, uint32_t *count,
                              size_t *bytes);

/* After drain, under write_mu: every entry gets seq `seq`; the table is
 * finished (fsync'd, directory too) into its slot, *slot (not in any
 * version).  On failure the file and slot are gone.  Either way the stream
 * keeps only its memory: free it with lsm_table_stream_abandon. */
lsm_status table_stream_finish(lsm_table_stream *s, uint64_t seq, int *slot);

#endif /* LSM_TABLE_STREAM_H */
