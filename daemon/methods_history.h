/* The history methods: history.list/get/search/delete, stats, cleanup,
 * db.backup, db.restore, db.check (docs/protocol.md), and the database
 * section of `health`. With persistence disabled (d->store NULL) each
 * method answers STORE_RPC_DISABLED ("persistence_disabled"). main.c
 * registers the table and sets d->health_database. */
#ifndef PROMPTD_METHODS_HISTORY_H
#define PROMPTD_METHODS_HISTORY_H

#include <jansson.h>

#include "rpc.h"

struct daemon;

extern const struct rpc_method methods_history[];

/* health.database from memory: {"status": "disabled"} without a store.
 * New reference. */
json_t *methods_history_health(struct daemon *d);

#endif
