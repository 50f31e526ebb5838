/* libFuzzer target: the configuration file parser. */
#include <stdint.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    log_set_level(LOG_ERROR);
    for (int private_file = 0; private_file < 2; private_file++) {
        struct config *cfg = config_defaults();
        if (!cfg)
            return 0;
        char err[512] = "";
        if (config_parse_text(cfg, (const char *)data, size, "fuzz.conf", private_file, err,
                              sizeof err) != 0 &&
            err[0] == '\0')
            abort(); /* an error always says why */
        json_t *j = config_to_json(cfg);
        if (!j)
            abort();
        json_decref(j);
        config_free(cfg);
    }
    return 0;
}
