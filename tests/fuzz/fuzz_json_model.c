/* libFuzzer harness: the top-level "model" finder (src/json_model.c) that
 * routes OpenAI-style requests. Checks that the span it returns lies inside
 * the text and is quoted, and, against jansson: when the text is a JSON
 * object whose "model" is a string and fg_json_model_unambiguous() calls it
 * unambiguous, fg_json_find_model() must find it too. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fg/json_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t start = 0, end = 0;
    char *text;
    int found, clear;
    json_t *root;
    json_error_t je;

    if (!(text = malloc(size ? size : 1)))
        return 0;
    memcpy(text, data, size);
    found = fg_json_find_model(text, size, &start, &end);
    if (found == 1 && (start >= end || end > size || text[start] != '"' || text[end - 1] != '"' ||
                       end - start < 2))
        abort();                        /* the span is not a quoted string inside the text */
    clear = fg_json_model_unambiguous(text, size);
    root = json_loadb(text, size, JSON_REJECT_DUPLICATES, &je);
    if (root && json_is_object(root) && json_is_string(json_object_get(root, "model")) &&
        clear == 1 && found != 1)
        abort();                        /* jansson sees a model the gateway does not */
    json_decref(root);
    free(text);
    return 0;
}
