/* What store.c offers the store's other modules (store_backup.c); not for
 * the rest of the daemon. Loop thread only. */
#ifndef PROMPTD_STORE_INTERNAL_H
#define PROMPTD_STORE_INTERNAL_H

#include <sqlite3.h>
#include <stdint.h>

#include "store.h"

/* The live file's page size (a restored copy is brought to it). */
int store_page_size(const struct store *s);
/* Hands a checked, migrated copy (its path: the writer unlinks it) to the
 * writer, which replaces the live data with it behind the rows already
 * queued; ids handed out from now on come after max_id. cb answers. */
void store_swap_in_restore(struct store *s, const char *copy, int64_t max_id, int64_t rows,
                           store_cb cb, void *arg);
/* The largest id the table or sqlite_sequence has seen; 0 when none. */
int64_t store_db_max_id(sqlite3 *db);

#endif
