/* Backend availability (fg/backend_state.h). */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fg/backend_state.h"
#include "fg/log.h"
#include "fg/outlier.h"

int fg_backend_available(const struct fg_backend *b)
{
    struct fg_backend *m = (struct fg_backend *)b;
    uint64_t busy;

    if (atomic_load_explicit(&m->st->down, memory_order_relaxed) || fg_outlier_ejected(b) ||
        atomic_load_explicit(&m->st->draining, memory_order_relaxed))
        return 0;
    busy = atomic_load_explicit(&m->st->busy_until_ms, memory_order_relaxed);
    return !busy || fg_outlier_now_ms() >= busy;
}

uint64_t fg_backend_held_ms(const struct fg_backend *b)
{
    uint64_t busy = atomic_load_explicit(&b->st->busy_until_ms,
                                         memory_order_relaxed), now;

    if (!busy)
        return 0;
    now = fg_outlier_now_ms();
    return busy > now ? busy - now : 0;
}

int64_t fg_retry_after_parse(const char *v, size_t len, time_t now)
{
    char buf[64];
    struct tm tm;
    const char *end;
    time_t when;
    int64_t s = 0;
    size_t i;

    while (len && (*v == ' ' || *v == '\t'))
        v++, len--;
    if (len && v[0] >= '0' && v[0] <= '9') {
        for (i = 0; i < len && v[i] >= '0' && v[i] <= '9'; i++)
            if ((s = s * 10 + (v[i] - '0')) > 86400 * 365)
                s = 86400 * 365;
        return i == len ? s * 1000 : -1;
    }
    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, v, len);
    buf[len] = '\0';
    memset(&tm, 0, sizeof(tm));
    if (!(end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm)) || *end)
        return -1;
    when = timegm(&tm);
    return when > now ? (int64_t)(when - now) * 1000 : 0;
}

void fg_backend_retry_after(struct fg_backend *b, int status, const char *value, size_t len)
{
    const struct fg_retry_cfg *rc = &b->upstream->retry;
    int64_t ms = fg_retry_after_parse(value, len, time(NULL));
    uint64_t until, old;

    if (!rc->enabled || ms <= 0 || !rc->max_retry_after_ms)
        return;
    if ((uint64_t)ms > rc->max_retry_after_ms)
        ms = rc->max_retry_after_ms;
    until = fg_outlier_now_ms() + (uint64_t)ms;
    /* only ever extended: two workers answering at once keep the later */
    old = atomic_load_explicit(&b->st->busy_until_ms, memory_order_relaxed);
    while (until > old &&
           !atomic_compare_exchange_weak_explicit(&b->st->busy_until_ms, &old, until,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
    if (until > old) {
        fg_log_info("upstream %s: backend %s answered %d with Retry-After: holding it for %lld ms",
                    b->upstream->name, b->addr.text, status, (long long)ms);
    }
}

void fg_backend_note(struct fg_backend *b, char *field, size_t size, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&b->st->info_lock);
    va_start(ap, fmt);
    vsnprintf(field, size, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&b->st->info_lock);
}
