/* The `improve` and `models` methods (docs/protocol.md) on top of the
 * engine in llm.c, plus the engine's wiring into the daemon. */
#ifndef PROMPTD_METHODS_IMPROVE_H
#define PROMPTD_METHODS_IMPROVE_H

#include "rpc.h"

struct daemon;

extern const struct rpc_method methods_improve[];

/* Creates d->llm, sets d->health_llm, registers methods_improve and starts
 * the prewarm when LLM_PREWARM is set. Call after d->loop and d->cfg are
 * set. Returns 0, or -1 (logged) when the engine cannot start. */
int methods_improve_start(struct daemon *d);

/* At shutdown, before the loop's remaining handles are closed: aborts
 * every upstream transfer (calls still open are answered -32800) and
 * closes the engine's handles. Safe when start failed or never ran. */
void methods_improve_stop(struct daemon *d);

#endif
