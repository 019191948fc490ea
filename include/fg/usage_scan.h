/* The token count of an LLM response (the "usage.total_tokens" that
 * OpenAI-style backends report), read as the response body streams through
 * the gateway, so a key can be charged its tokens per minute without
 * buffering the body: the body arrives in chunks cut anywhere (inside a key,
 * inside a number) and the scanner keeps a few dozen bytes of state.
 *
 * Two body forms, told apart by the first significant byte:
 *  - a plain JSON body (it starts with '{' or '[', after optional whitespace
 *    and a UTF-8 BOM): one document, e.g.
 *        {"id":"x","choices":[...],"usage":{"prompt_tokens":9,"total_tokens":21}}
 *  - anything else is read as a Server-Sent-Events stream: lines "data: JSON"
 *    make up the documents; "event:", "id:", "retry:" and ":" comment lines
 *    are skipped, never read as JSON. A blank line (end of an event) ends the
 *    document; a "data:" line starts a new one unless the document of the
 *    previous data line of the same event is still open (the SSE rule that
 *    several data lines of one event join into one text). "data: [DONE]"
 *    reads as a JSON array without keys, so it changes nothing. Lines may end
 *    in LF, CRLF or CR.
 *
 * Only a value the backend wrote counts, never text the model generated:
 * generated text is inside JSON strings, and the scanner follows strings
 * (with escapes) so nothing in them is taken for structure. A number counts
 * when it is the value of a "total_tokens" member (the key outside any string,
 * at a key position, then ':') of an object that is itself the value of a
 * "usage" member, at any depth ({"response":{"usage":{...}}} counts too; a
 * "total_tokens" at the top level, in an unrelated object, or in an object
 * nested inside usage does not). The value must be a plain JSON integer
 * (digits, no sign, fraction or exponent, ended by whitespace, ',' or '}');
 * anything else (12.5, -3, "12", 1e3, 012) is ignored. Values beyond
 * UINT64_MAX read as UINT64_MAX. When several usage values are seen (one
 * per event in some streams) the last one wins.
 *
 * Limits: a scanner, not a validator. Keys are compared byte for byte, so a
 * key spelled with escapes ("total\u005ftokens") does not match. Objects and
 * arrays nested deeper than FG_USAGE_SCAN_MAX_DEPTH levels are followed (so
 * the scan stays in step) but a "usage" object opened there is not
 * recognised. A document seen to be malformed (a raw control character such
 * as a newline inside a string, a '}' or ']' with nothing open) is ignored
 * from there on: to the end of the body for a plain JSON body, to the next
 * document for an SSE stream. A number cut off by the end of the body is not
 * counted. */
#ifndef FG_USAGE_SCAN_H
#define FG_USAGE_SCAN_H

#include <stddef.h>
#include <stdint.h>

/* The deepest nesting at which a "usage" object is recognised (the outermost
 * object is at depth 1). */
#define FG_USAGE_SCAN_MAX_DEPTH 63

/* The scanner's state; its members are private to usage_scan.c. */
struct fg_usage_scan {
    uint64_t usage_at;          /* bit d: the object at depth d is a "usage" value */
    uint64_t num;               /* the total_tokens value being read */
    uint64_t total;             /* the last value that counted */
    uint32_t depth;             /* objects and arrays open */
    unsigned char mode;         /* body form, not yet known / JSON / SSE */
    unsigned char line;         /* SSE: where in a line */
    unsigned char pos;          /* bytes of "data:" (or of the BOM) matched */
    unsigned char lead;         /* blanks before the first line's text */
    unsigned char cr;           /* the last byte was a CR */
    unsigned char tok;          /* JSON: where in a token */
    unsigned char esc;          /* in a string, after a backslash */
    unsigned char sep;          /* the last token was '{' or ',': a key may follow */
    unsigned char key_len;      /* bytes of the current key string */
    unsigned char key_hits;     /* which wanted keys it still matches */
    unsigned char key;          /* the key just read, waiting for its value */
    unsigned char num_bad;      /* the number is not a plain integer */
    unsigned char num_zero;     /* the number began with 0 */
    unsigned char seen;         /* total holds a value */
};

/* Readies <s> for a new response body. */
void fg_usage_scan_init(struct fg_usage_scan *s);

/* Feeds the next <len> bytes of the response body, cut anywhere. */
void fg_usage_scan_feed(struct fg_usage_scan *s, const char *data, size_t len);

/* Stores in *total_tokens the total_tokens of the last usage object seen so
 * far and returns 1; stores 0 and returns 0 when none was seen. Can be called
 * at any time; feeding may go on after it. */
int fg_usage_scan_result(const struct fg_usage_scan *s, uint64_t *total_tokens);

#endif
