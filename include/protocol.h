/* Wire-protocol constants shared by promptd and promptctl.
 * The contract itself is docs/protocol.md; these numbers must match it. */
#ifndef PROMPTD_PROTOCOL_H
#define PROMPTD_PROTOCOL_H

#define PROMPTD_VERSION  "0.1.0"
#define PROMPTD_PROTOCOL 1

/* JSON-RPC 2.0 error codes (docs/protocol.md, "Errors"). */
enum rpc_code {
    RPC_PARSE_ERROR = -32700,
    RPC_INVALID_REQUEST = -32600,
    RPC_METHOD_NOT_FOUND = -32601,
    RPC_INVALID_PARAMS = -32602,
    RPC_INTERNAL = -32603,
    RPC_UPSTREAM_UNAVAILABLE = -32000,
    RPC_UPSTREAM_TIMEOUT = -32001,
    RPC_UPSTREAM_ERROR = -32002,
    RPC_BAD_MODEL_OUTPUT = -32003,
    RPC_NOT_FOUND = -32004,
    RPC_OVERLOADED = -32005,
    RPC_PERSISTENCE_DISABLED = -32006, /* extension: SQLITE_ENABLED=false */
    RPC_STORAGE_ERROR = -32007,        /* extension: the database failed */
    RPC_CANCELLED = -32800,
};

/* data.kind for each code; "too_large" shares -32600. Only
 * rpc_code_kind and the one too_large sender name them. */
#define KIND_PARSE_ERROR          "parse_error"
#define KIND_INVALID_REQUEST      "invalid_request"
#define KIND_TOO_LARGE            "too_large"
#define KIND_METHOD_NOT_FOUND     "method_not_found"
#define KIND_INVALID_PARAMS       "invalid_params"
#define KIND_INTERNAL             "internal"
#define KIND_UPSTREAM_UNAVAILABLE "upstream_unavailable"
#define KIND_UPSTREAM_TIMEOUT     "upstream_timeout"
#define KIND_UPSTREAM_ERROR       "upstream_error"
#define KIND_BAD_MODEL_OUTPUT     "bad_model_output"
#define KIND_NOT_FOUND            "not_found"
#define KIND_OVERLOADED           "overloaded"
#define KIND_PERSISTENCE_DISABLED "persistence_disabled"
#define KIND_STORAGE_ERROR        "storage_error"
#define KIND_CANCELLED            "cancelled"

/* data.kind of an error code (common/rpc_kind.c): the one mapping. */
const char *rpc_code_kind(int code);

#endif
