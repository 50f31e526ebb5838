#include "protocol.h"

#include <stddef.h>

/* The one table from an error code to its data.kind (docs/protocol.md,
 * "Errors"). "too_large" shares -32600 with invalid_request: the one place
 * that sends it (a line over MAX_REQUEST_BYTES, conn.c) names it itself. */
static const struct {
    int code;
    const char *kind;
} rpc_kinds[] = {
    {RPC_PARSE_ERROR, KIND_PARSE_ERROR},
    {RPC_INVALID_REQUEST, KIND_INVALID_REQUEST},
    {RPC_METHOD_NOT_FOUND, KIND_METHOD_NOT_FOUND},
    {RPC_INVALID_PARAMS, KIND_INVALID_PARAMS},
    {RPC_INTERNAL, KIND_INTERNAL},
    {RPC_UPSTREAM_UNAVAILABLE, KIND_UPSTREAM_UNAVAILABLE},
    {RPC_UPSTREAM_TIMEOUT, KIND_UPSTREAM_TIMEOUT},
    {RPC_UPSTREAM_ERROR, KIND_UPSTREAM_ERROR},
    {RPC_BAD_MODEL_OUTPUT, KIND_BAD_MODEL_OUTPUT},
    {RPC_NOT_FOUND, KIND_NOT_FOUND},
    {RPC_OVERLOADED, KIND_OVERLOADED},
    {RPC_PERSISTENCE_DISABLED, KIND_PERSISTENCE_DISABLED},
    {RPC_STORAGE_ERROR, KIND_STORAGE_ERROR},
    {RPC_CANCELLED, KIND_CANCELLED},
};

const char *rpc_code_kind(int code) {
    for (size_t i = 0; i < sizeof rpc_kinds / sizeof rpc_kinds[0]; i++)
        if (rpc_kinds[i].code == code)
            return rpc_kinds[i].kind;
    return KIND_INTERNAL; /* an unknown code is a bug; say so, never crash */
}
