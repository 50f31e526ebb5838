/* The daemon's own methods: ping, version, health, config.get, cancel. */
#ifndef PROMPTD_METHODS_CORE_H
#define PROMPTD_METHODS_CORE_H

#include "rpc.h"

extern const struct rpc_method methods_core[];

#endif
