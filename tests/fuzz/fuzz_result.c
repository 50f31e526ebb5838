/* libFuzzer target: model-output repair and validation. Whatever a model
 * says, the result is either a complete, typed improvement with confidence
 * in 0..1, or an error with a bounded, valid-UTF-8 detail. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llm_result.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct improve_result r;
    result_init(&r);
    char *detail = NULL;
    int rc = result_parse_model_output((const char *)data, size, &r, &detail);
    if (rc == RESULT_OK) {
        if (!r.improved_prompt || !r.role || !r.directive || !r.framework ||
            !json_is_array(r.guardrails))
            abort();
        if (r.has_confidence && !(r.confidence >= 0.0 && r.confidence <= 1.0))
            abort();
        json_t *j = result_to_json(&r, NULL);
        if (!j)
            abort();
        json_decref(j);
    } else if (detail &&
               (strlen(detail) > RESULT_DETAIL_BYTES || !utf8_valid(detail, strlen(detail)))) {
        abort();
    }
    free(detail);
    result_clear(&r);
    return 0;
}
