/* libFuzzer target: the request framer and the JSON-RPC validator, fed any
 * bytes a client could send. */
#include <stdint.h>
#include <stdlib.h>

#include "conn.h"
#include "log.h"
#include "rpc.h"

static bool parse_line(void *arg, const char *line, size_t n) {
    struct rpc_request r;
    int rc = rpc_parse_request(line, n, &r);
    if (rc == 0 && (!r.method || !r.request))
        abort(); /* a valid request always has a method */
    if (rc != 0 && (!r.kind || r.code == 0 || r.message[0] == '\0'))
        abort(); /* every rejection explains itself */
    json_decref(r.request);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    log_set_level(LOG_ERROR);
    size_t used = conn_frame_lines((const char *)data, size, parse_line, NULL);
    if (used > size)
        abort();
    /* The unframed tail, as the daemon would see it once a newline came. */
    parse_line(NULL, (const char *)data + used, size - used);
    return 0;
}
