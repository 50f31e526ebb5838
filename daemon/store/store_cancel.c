/* The cancel token of store.h: the loop and the store race for one state
 * change with a compare-and-swap, so exactly one side decides. Shared by
 * every backend. */
#include "store.h"

bool store_cancel_request(struct store_cancel *c) {
    int expected = STORE_CANCEL_PENDING;
    return atomic_compare_exchange_strong(&c->state, &expected, STORE_CANCEL_CANCELLED) ||
           expected == STORE_CANCEL_CANCELLED;
}

bool store_cancel_commit(struct store_cancel *c) {
    int expected = STORE_CANCEL_PENDING;
    if (!c)
        return true;
    return atomic_compare_exchange_strong(&c->state, &expected, STORE_CANCEL_COMMITTED) ||
           expected == STORE_CANCEL_COMMITTED;
}

bool store_cancel_asked(struct store_cancel *c) {
    return c && atomic_load(&c->state) == STORE_CANCEL_CANCELLED;
}
