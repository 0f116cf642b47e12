/*
 * manifest.h — the append-only, checksummed log of edits to the live SST set.
 *
 * <dir>/MANIFEST holds a header and a sequence of records, each one edit
 * (format in WAL_MANIFEST_FORMAT.md).  Replaying the edits in order gives the
 * manifest_state: the live tables plus the engine's counters.  A rewrite
 * replaces the file atomically with one snapshot edit of the whole state.
 *
 * Load rules: a torn final record (the file ends inside it, or every byte
 * from its start to the end of the file is zero: a crash mid-append) is
 * dropped and counted.  Any other damage — bad magic or version, a checksum
 * mismatch, a malformed edit, an edit that removes an unknown table or adds a
 * live one — is LSM_CORRUPT with a message naming the file.
 *
 * Cross-process use: manifest handles are process-local; callers serialise
 * manifest_append / manifest_rewrite across processes (the engine's flush_mu).
 * Each call appends at the file's current end and follows a rewrite made by
 * another process's handle, so handles never go stale.
 */
#ifndef LSM_MANIFEST_H
#define LSM_MANIFEST_H

#include <stdbool.h>
#include <stdint.h>

#include "lsm.h"
#include "table_meta.h"

#define MANIFEST_FORMAT_VERSION 1u
#define MANIFEST_MAX_RECORD (1u << 30)   /* bytes of one edit's payload */

/* One edit.  Applied in this order: scalars, removals, additions. */
typedef struct manifest_edit {
    bool has_next_file_no;
    uint64_t next_file_no;
    bool has_log_number;
    uint64_t log_number;         /* oldest WAL segment still needed */
    bool has_last_seq;
    uint64_t last_seq;
    uint32_t n_added;
    const table_meta *added;
    uint32_t n_removed;
    const uint64_t *removed;     /* file numbers */
} manifest_edit;

typedef struct manifest_state {
    uint64_t next_file_no;       /* 1 until an edit sets it */
    uint64_t log_number;
    uint64_t last_seq;
    table_meta *tables;          /* live tables in the order added (malloc'd) */
    uint32_t n_tables;
    uint64_t records_dropped;    /* torn final record: 0 or 1 */
    bool found;                  /* false: no MANIFEST (fresh database) */
} manifest_state;

typedef struct manifest manifest;   /* process-local: fd + current size */

/* Reads <dir>/MANIFEST into *st (free with manifest_state_free).  A missing
 * file gives the empty state with found = false. */
lsm_status manifest_load(const char *dir, manifest_state *st);
void manifest_state_free(manifest_state *st);

/* Opens <dir>/MANIFEST for appending, creating it (atomically, header only)
 * if absent.  Verifies framing and checksums and truncates a torn final
 * record, so the next append follows the last good one. */
lsm_status manifest_open(const char *dir, manifest **out);

/* Appends one edit, then fdatasyncs.  LSM_INVALID for an edit that could not
 * be loaded back (a table bound over TABLE_BOUND_MAX); on failure the file
 * is cut back to its previous end. */
lsm_status manifest_append(manifest *m, const manifest_edit *e);

/* Replaces MANIFEST with a snapshot of st: writes MANIFEST.tmp, fsyncs it,
 * renames it over MANIFEST, fsyncs the directory, reopens for appending.
 * st->records_dropped and st->found are ignored. */
lsm_status manifest_rewrite(manifest *m, const manifest_state *st);

/* Bytes in the file after this handle's last append / rewrite. */
uint64_t manifest_size(const manifest *m);

void manifest_close(manifest *m);

#endif /* LSM_MANIFEST_H */
