/* The top-level "model" member of a JSON request body (OpenAI-style APIs:
 * /v1/chat/completions, /v1/completions, /v1/embeddings), found by a small
 * scanner that keeps byte positions, so the gateway can route on it and
 * rewrite it without re-serialising (and so altering) the rest of the body. */
#ifndef FG_JSON_MODEL_H
#define FG_JSON_MODEL_H

#include <stddef.h>

/* Looks for "model": "VALUE" among the top-level members of the object in
 * <text>. Returns 1 with *start / *end the offsets of VALUE's opening and
 * closing quotes (end is the closing quote's offset + 1), 0 when the text is
 * an object without a string "model", -1 when it is not a JSON object (or is
 * cut short). Nested objects are skipped, never searched. */
int fg_json_find_model(const char *text, size_t len, size_t *start, size_t *end);

/* 0 when the object in <text> could name its model in a way JSON libraries
 * read differently from fg_json_find_model(): a second top-level "model",
 * or a top-level key written with escapes (which may decode to "model"), or
 * a text that is not well-formed where it was scanned. 1 otherwise (also
 * for a text that is not an object: it names no model). */
int fg_json_model_unambiguous(const char *text, size_t len);

#endif
