/* Positions of values inside JSON text, for error messages.
 *
 * jansson does not remember where a value came from, so when the
 * configuration loader rejects a value it scans the original text again to
 * find the line and column to report. These functions run only on error
 * paths, on text jansson has already parsed (or, for fg_json_key_before(),
 * the prefix jansson accepted before a duplicate key); they are nonetheless
 * bounded by <len> and safe on any bytes: malformed text yields -1, never a
 * read out of bounds. They keep no state and are safe from any thread.
 *
 * Lines and columns are 1-based; columns count characters (UTF-8 sequences),
 * not bytes, as jansson's own error positions do, so both kinds of message
 * point at the same place in an editor. */
#ifndef FG_JSON_POS_H
#define FG_JSON_POS_H

#include <stddef.h>

/* Deeper than any key of the configuration schema needs. */
#define FG_JSON_PATH_MAX 16

/* One step of a JSON path: an object member or an array element. */
struct fg_json_seg {
    const char *key;            /* member name (NUL-terminated), or NULL for an array element */
    size_t index;               /* element index when key == NULL */
};

/* Finds the value reached from the top-level value of <text> by following
 * <depth> segments of <path> (depth 0: the top-level value itself). With
 * <at_key> set and the last segment naming an object member, the position
 * is that of the member's key (its opening quote) rather than of its value.
 * Keys are compared after decoding JSON escapes, so "caf\u00e9" matches
 * "café". Returns 0 and sets *line and *col, or -1 when the path does not
 * exist or the text is malformed. */
int fg_json_pos(const char *text, size_t len, const struct fg_json_seg *path,
                unsigned depth, int at_key, unsigned *line, unsigned *col);

/* Line and column of byte <offset> (clamped to <len>) of <text>. */
void fg_json_linecol(const char *text, size_t len, size_t offset,
                     unsigned *line, unsigned *col);

/* Formats <path> as "$.upstreams.models.backends[0].weight"; a key that is
 * not a simple identifier ([A-Za-z_][A-Za-z0-9_]*) is written ["like this"],
 * JSON-escaped. Returns a malloc'd string the caller frees, NULL when out of
 * memory. */
char *fg_json_path_format(const struct fg_json_seg *path, unsigned depth);

/* <s> between double quotes, with '"', '\\' and control characters
 * escaped as in JSON. malloc'd; NULL when out of memory. */
char *fg_json_quote(const char *s);

/* Finds the object member key whose token ends at or before byte <offset>,
 * innermost and last: with jansson's JSON_REJECT_DUPLICATES, the error
 * position is just past the duplicate key, so this names it. Sets *path to
 * the formatted path of that member (as fg_json_path_format()), *key to its
 * decoded name (both malloc'd, the caller frees them) and *line, *col to
 * the position of its opening quote. Returns 0, or -1 (nothing allocated)
 * when no such key exists or out of memory. */
int fg_json_key_before(const char *text, size_t len, size_t offset, char **path,
                       char **key, unsigned *line, unsigned *col);

#endif
