/* Reading usage.total_tokens from a streamed response body
 * (fg/usage_scan.h). Two layers, fed one byte at a time so a chunk boundary
 * can fall anywhere: the body layer tells a plain JSON body from an SSE
 * stream and, for SSE, cuts lines and passes only the text of "data:" lines
 * on; the JSON layer follows strings, nesting and the key/value positions it
 * cares about. Every state lives in struct fg_usage_scan, nothing is kept
 * from the bytes themselves but the number being read. */
#include "config.h"

#include <string.h>

#include "fg/usage_scan.h"

enum { MODE_START, MODE_JSON, MODE_SSE };
enum { LINE_START, LINE_DATA, LINE_SKIP };
enum { TOK_NONE, TOK_STRING, TOK_AFTER_KEY, TOK_AFTER_COLON, TOK_NUMBER, TOK_BROKEN };
enum { KEY_OTHER, KEY_USAGE, KEY_TOTAL };

#define HIT_USAGE 1u
#define HIT_TOTAL 2u

static const char key_usage[] = "usage";
static const char key_total[] = "total_tokens";
static const char data_field[] = "data:";
static const char bom[] = "\xEF\xBB\xBF";

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* ---- the JSON layer --------------------------------------------------- */

/* A new document: nothing open, no key pending. */
static void json_reset(struct fg_usage_scan *s)
{
    s->usage_at = 0;
    s->depth = 0;
    s->tok = TOK_NONE;
    s->esc = 0;
    s->sep = 0;
    s->key = KEY_OTHER;
}

static int in_usage(const struct fg_usage_scan *s)
{
    return s->depth <= FG_USAGE_SCAN_MAX_DEPTH && (s->usage_at >> s->depth & 1u);
}

/* '{' or '['. The bit of the new depth is always rewritten, so a bit left by
 * an earlier, closed container at that depth never counts. */
static void open_container(struct fg_usage_scan *s, int is_object, int is_usage)
{
    if (s->depth == UINT32_MAX) {
        s->tok = TOK_BROKEN;
        return;
    }
    s->depth++;
    if (s->depth <= FG_USAGE_SCAN_MAX_DEPTH) {
        uint64_t bit = (uint64_t)1 << s->depth;
        s->usage_at = is_usage ? s->usage_at | bit : s->usage_at & ~bit;
    }
    s->sep = (unsigned char)is_object;
}

static void close_container(struct fg_usage_scan *s)
{
    if (s->depth == 0) {
        s->tok = TOK_BROKEN;
        return;
    }
    s->depth--;
    s->sep = 0;
}

/* A string opened after '{' or ',' may be a key we want: it is compared
 * byte by byte against both as it goes by. */
static void start_string(struct fg_usage_scan *s)
{
    s->tok = TOK_STRING;
    s->esc = 0;
    s->key_len = 0;
    s->key_hits = s->sep ? HIT_USAGE | HIT_TOTAL : 0;
    s->sep = 0;
}

static void key_byte(struct fg_usage_scan *s, unsigned char c)
{
    if (!s->key_hits)
        return;
    if (s->key_len >= sizeof key_usage - 1 || c != (unsigned char)key_usage[s->key_len])
        s->key_hits &= ~HIT_USAGE;
    if (s->key_len >= sizeof key_total - 1 || c != (unsigned char)key_total[s->key_len])
        s->key_hits &= ~HIT_TOTAL;
    s->key_len++;               /* cannot pass 12 while a hit is left */
}

static void end_string(struct fg_usage_scan *s)
{
    if ((s->key_hits & HIT_USAGE) && s->key_len == sizeof key_usage - 1)
        s->key = KEY_USAGE;
    else if ((s->key_hits & HIT_TOTAL) && s->key_len == sizeof key_total - 1)
        s->key = KEY_TOTAL;
    else
        s->key = KEY_OTHER;
    s->key_hits = 0;
    s->tok = s->key == KEY_OTHER ? TOK_NONE : TOK_AFTER_KEY;
}

static void string_byte(struct fg_usage_scan *s, unsigned char c)
{
    if (s->esc) {
        s->esc = 0;
    } else if (c == '\\') {
        s->esc = 1;
        s->key_hits = 0;        /* an escaped key is never one we want */
    } else if (c == '"') {
        end_string(s);
    } else if (c < 0x20) {
        s->tok = TOK_BROKEN;    /* raw control byte: not JSON, stop trusting it */
    } else {
        key_byte(s, c);
    }
}

static void start_number(struct fg_usage_scan *s, unsigned char c)
{
    s->tok = TOK_NUMBER;
    s->num = (uint64_t)(c - '0');
    s->num_bad = 0;
    s->num_zero = c == '0';
}

/* Returns 1 when <c> belongs to the number, 0 when it ends it (the caller
 * then reads <c> as the next token). Sign, fraction and exponent characters
 * are swallowed but spoil the number. */
static int number_byte(struct fg_usage_scan *s, unsigned char c)
{
    if (is_digit(c)) {
        unsigned d = (unsigned)(c - '0');
        if (s->num_zero)
            s->num_bad = 1;     /* 012 is not JSON */
        else if (s->num > (UINT64_MAX - d) / 10)
            s->num = UINT64_MAX;
        else
            s->num = s->num * 10 + d;
        return 1;
    }
    if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
        s->num_bad = 1;
        return 1;
    }
    if (!s->num_bad && (is_ws(c) || c == ',' || c == '}')) {
        s->total = s->num;
        s->seen = 1;
    }
    return 0;
}

/* A byte between tokens. */
static void plain_byte(struct fg_usage_scan *s, unsigned char c)
{
    switch (c) {
    case '"':
        start_string(s);
        break;
    case '{':
        open_container(s, 1, 0);
        break;
    case '[':
        open_container(s, 0, 0);
        break;
    case '}':
    case ']':
        close_container(s);
        break;
    case ',':
        s->sep = 1;
        break;
    default:
        if (!is_ws(c))
            s->sep = 0;         /* a literal or a number we do not want */
        break;
    }
}

static void json_byte(struct fg_usage_scan *s, unsigned char c)
{
    switch (s->tok) {
    case TOK_BROKEN:
        return;
    case TOK_STRING:
        string_byte(s, c);
        return;
    case TOK_AFTER_KEY:
        if (is_ws(c))
            return;
        if (c == ':') {
            s->tok = TOK_AFTER_COLON;
            return;
        }
        s->tok = TOK_NONE;      /* a string that was not a key after all */
        break;
    case TOK_AFTER_COLON:
        if (is_ws(c))
            return;
        s->tok = TOK_NONE;
        if (s->key == KEY_USAGE && c == '{') {
            open_container(s, 1, 1);
            return;
        }
        if (s->key == KEY_TOTAL && is_digit(c) && in_usage(s)) {
            start_number(s, c);
            return;
        }
        break;
    case TOK_NUMBER:
        if (number_byte(s, c))
            return;
        s->tok = TOK_NONE;
        break;
    default:
        break;
    }
    plain_byte(s, c);
}

/* ---- the body layer --------------------------------------------------- */

/* A line ends. The text of data lines of one event joins with a newline,
 * which the JSON layer reads as whitespace (or, inside a string, as a sign
 * the document is broken). A blank line ends the event and its document. */
static void end_line(struct fg_usage_scan *s)
{
    if (s->line == LINE_DATA)
        json_byte(s, '\n');
    else if (s->line == LINE_START && s->pos == 0)
        json_reset(s);
    s->line = LINE_START;
    s->pos = 0;
}

/* At the start of a line, matching the field name "data:". A data line
 * continues the document of the event's previous data line only while that
 * document is open and sound; otherwise it starts a fresh one, so one
 * document a line (what backends send) is read line by line and a broken
 * line spoils nothing after it. */
static void field_byte(struct fg_usage_scan *s, unsigned char c)
{
    if (c != (unsigned char)data_field[s->pos]) {
        s->line = LINE_SKIP;    /* event:, id:, retry:, a comment, ... */
        return;
    }
    if (++s->pos < sizeof data_field - 1)
        return;
    s->line = LINE_DATA;
    if (s->depth == 0 || s->tok == TOK_BROKEN)
        json_reset(s);
}

static void sse_byte(struct fg_usage_scan *s, unsigned char c)
{
    if (c == '\n' && s->cr) {
        s->cr = 0;              /* the LF of a CRLF: the line already ended */
        return;
    }
    s->cr = c == '\r';
    if (c == '\r' || c == '\n')
        end_line(s);
    else if (s->line == LINE_DATA)
        json_byte(s, c);
    else if (s->line == LINE_START)
        field_byte(s, c);
}

/* Before the first significant byte: a UTF-8 BOM and whitespace are passed
 * over; '{' or '[' makes the body plain JSON, anything else an SSE stream.
 * Blanks before the text of an SSE line make its field name something other
 * than "data", so such a first line is skipped, as later ones would be. */
static void start_byte(struct fg_usage_scan *s, unsigned char c)
{
    if (s->pos < sizeof bom - 1) {
        if (c == (unsigned char)bom[s->pos]) {
            s->pos++;
            return;
        }
        if (s->pos > 0)
            s->lead = 1;        /* half a BOM: the line is not a field */
        s->pos = sizeof bom - 1;
    }
    if (c == ' ' || c == '\t') {
        s->lead = 1;
        return;
    }
    if (c == '\r' || c == '\n') {
        s->lead = 0;
        return;
    }
    if (c == '{' || c == '[') {
        s->mode = MODE_JSON;
        json_byte(s, c);
        return;
    }
    s->mode = MODE_SSE;
    s->line = s->lead ? LINE_SKIP : LINE_START;
    s->pos = 0;
    sse_byte(s, c);
}

/* ---- interface -------------------------------------------------------- */

void fg_usage_scan_init(struct fg_usage_scan *s)
{
    memset(s, 0, sizeof *s);
    s->mode = MODE_START;
    s->line = LINE_START;
    json_reset(s);
}

void fg_usage_scan_feed(struct fg_usage_scan *s, const char *data, size_t len)
{
    const unsigned char *p = (const unsigned char *)data;
    const unsigned char *end = p + len;

    for (; p < end; p++) {
        switch (s->mode) {
        case MODE_JSON:
            json_byte(s, *p);
            break;
        case MODE_SSE:
            sse_byte(s, *p);
            break;
        default:
            start_byte(s, *p);
            break;
        }
    }
}

int fg_usage_scan_result(const struct fg_usage_scan *s, uint64_t *total_tokens)
{
    *total_tokens = s->seen ? s->total : 0;
    return s->seen;
}
