/* fleetgate: command line. */
#include "config.h"

#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg/config.h"
#include "fg/daemon.h"
#include "fg/keygen.h"
#include "fg/log.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fleetgate -c FILE [-t] [-d]\n"
            "       fleetgate keygen NAME\n"
            "       fleetgate -v | -h\n"
            "\n"
            "  -c FILE  configuration file (JSON)\n"
            "  -t       validate the configuration and exit (0: valid, 1: not)\n"
            "  -d       debug logging\n"
            "  -v       print the version and exit\n"
            "  -h       print this help and exit\n"
            "  keygen   print a new API key, once, and its entry for \"keys\"\n");
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int test_only = 0, debug = 0, opt, status;
    struct fg_config *cfg;
    char *err = NULL;

    if (argc >= 2 && strcmp(argv[1], "keygen") == 0)
        return fg_keygen_main(argc - 1, argv + 1);
    while ((opt = getopt(argc, argv, "c:tdvh")) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 't': test_only = 1; break;
        case 'd': debug = 1; fg_log_set_level(FG_LOG_DEBUG); break;
        case 'v': printf("fleetgate %s\n", PACKAGE_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!path || optind != argc) {
        usage(stderr);
        return 2;
    }
    cfg = fg_config_load(path, &err);
    if (!cfg) {
        fprintf(stderr, "fleetgate: %s\n", err ? err : "cannot load configuration");
        free(err);
        return 1;
    }
    if (!debug)
        fg_log_set_level((enum fg_log_level)cfg->log.level);
    if (test_only) {
        printf("configuration %s ok\n", path);
        fg_config_free(cfg);
        return 0;
    }
    /* Worker threads allocate from their own malloc arenas, which glibc
     * shrinks and regrows with an mprotect() per step as streams come and
     * go under load; keeping up to 16 MiB of free heap per arena saves those
     * syscalls. Fixing the trim threshold also freezes glibc's adaptive mmap
     * threshold at 128 KiB, which would put every large buffer (TLS, bulk
     * reads) in an mmap/munmap pair: allocate below 1 MiB from the heap. */
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    status = fg_daemon_run(cfg, NULL);
    fg_config_unref(cfg);
    return status;
}
