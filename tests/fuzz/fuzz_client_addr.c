/* libFuzzer harness: client addresses (src/client_addr.c). The input is
 * lines: the first is parsed as the socket's peer address (a fixed one when
 * it is not an address), the others are X-Forwarded-For header values,
 * walked with a fixed list of trusted proxies. Every line is also parsed
 * alone with fg_ip_parse() and, when it is an address, formatted and parsed
 * back, which must give the same address. */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fg/client_addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_VALUES 16

static struct fg_cidr net(int family, const char *text, unsigned bits)
{
    struct fg_cidr c;

    memset(&c, 0, sizeof c);
    c.family = family;
    c.bits = bits;
    if (inet_pton(family, text, c.addr) != 1)
        abort();
    return c;
}

static void round_trip(const char *s, size_t len)
{
    struct fg_ip ip, back;
    char buf[FG_IP_STRLEN];

    if (fg_ip_parse(s, len, &ip) < 0)
        return;
    if (fg_ip_format(&ip, buf, sizeof buf) < 0)
        abort();
    if (fg_ip_parse(buf, strlen(buf), &back) < 0 || back.family != ip.family ||
        memcmp(back.addr, ip.addr, sizeof ip.addr))
        abort();                        /* formatting does not give the address back */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fg_cidr trusted[4];
    const char *values[MAX_VALUES];
    size_t lens[MAX_VALUES];
    char *lines[MAX_VALUES + 1];
    size_t line_lens[MAX_VALUES + 1];
    unsigned nlines = 0;
    struct fg_ip peer, out;
    size_t start = 0;

    trusted[0] = net(AF_INET, "10.0.0.0", 8);
    trusted[1] = net(AF_INET, "127.0.0.1", 32);
    trusted[2] = net(AF_INET6, "::1", 128);
    trusted[3] = net(AF_INET6, "fd00::", 8);

    /* each line in its own exact-size allocation, so reads past it show */
    for (size_t i = 0; i <= size && nlines < MAX_VALUES + 1; i++) {
        if (i == size || data[i] == '\n') {
            size_t n = i - start;
            if (!(lines[nlines] = malloc(n ? n : 1)))
                goto out;
            memcpy(lines[nlines], data + start, n);
            line_lens[nlines++] = n;
            start = i + 1;
        }
    }
    for (unsigned i = 0; i < nlines; i++)
        round_trip(lines[i], line_lens[i]);

    if (nlines == 0 || fg_ip_parse(lines[0], line_lens[0], &peer) < 0) {
        memset(&peer, 0, sizeof peer);
        peer.family = AF_INET;
        peer.addr[0] = 10, peer.addr[3] = 1;    /* 10.0.0.1: trusted */
    }
    for (unsigned i = 1; i < nlines; i++) {
        values[i - 1] = lines[i];
        lens[i - 1] = line_lens[i];
    }
    fg_xff_client(&peer, trusted, 4, values, lens, nlines ? nlines - 1 : 0, &out);
    if (out.family != AF_INET && out.family != AF_INET6)
        abort();
    (void)fg_ip_in(&out, trusted, 4);
out:
    for (unsigned i = 0; i < nlines; i++)
        free(lines[i]);
    return 0;
}
