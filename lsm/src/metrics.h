/*
 * metrics.h — lsm_stats rendered as Prometheus text exposition (format 0.0.4).
 *
 * Every lsm_stats field becomes one metric family named flowdb_<field>, each
 * preceded by its "# HELP" and "# TYPE" lines:
 *   - monotonically increasing event counts are counters, suffixed _total
 *     (flowdb_records_written_total);
 *   - levels, sizes, ratios and sequence numbers are gauges (flowdb_table_bytes);
 *   - each lsm_latency is a summary flowdb_<field>_us with samples
 *     {quantile="0.5"}, {quantile="0.9"}, {quantile="0.99"} and _count
 *     (lsm_latency carries no sum, so no _sum sample is written).
 * Non-finite doubles are written as NaN, +Inf, -Inf.
 */
#ifndef LSM_METRICS_H
#define LSM_METRICS_H

#include "lsm.h"

/* *out receives malloc'd NUL-terminated text; the caller frees it. */
lsm_status metrics_format(const lsm_stats *st, char **out);

#endif /* LSM_METRICS_H */
