/* The pool of read-only connections (store_readers.c), thread-safe: the
 * job runner takes one per job on a thread-pool thread; the writer
 * interrupts them at shutdown and locks them out while it replaces the
 * file. The pool knows connections, not queries. */
#ifndef PROMPTD_STORE_READERS_H
#define PROMPTD_STORE_READERS_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

struct store_readers;

/* path is copied. Connections open lazily. NULL when a lock cannot be
 * made. Freed with store_readers_free. */
struct store_readers *store_readers_new(const char *path);
void store_readers_free(struct store_readers *r);
/* A read-only connection for one job; holds the pool's shared lock until
 * release, so the file is never replaced under a running query. *fresh:
 * the connection was just opened (the caller registers what its queries
 * need on it). NULL with err when the database cannot be opened. */
sqlite3 *store_readers_acquire(struct store_readers *r, bool *fresh, char *err, size_t errlen);
/* broken: close it instead of pooling it (it saw an I/O error, or it is
 * not clean). */
void store_readers_release(struct store_readers *r, sqlite3 *db, bool broken);
/* Interrupts every running query (SQLITE_INTERRUPT) and every later one:
 * at shutdown nothing waits for a long quick_check or search. */
void store_readers_interrupt_all(struct store_readers *r);
/* Waits for running queries, closes every pooled connection and keeps new
 * ones from opening until unlock: the writer moves the file meanwhile. */
void store_readers_lock_all(struct store_readers *r);
void store_readers_unlock_all(struct store_readers *r);

#endif
