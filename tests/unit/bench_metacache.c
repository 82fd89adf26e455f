/*
 * bench_metacache.c - micro-benchmark of src/metacache.c (`make
 * bench-metacache`, not part of `make test`): the cost of one create
 * (metacache_update_entry inserting a new name) into a cached listing that
 * already holds 1k, 10k, 100k and 1M entries, and of one cached lookup, in
 * ns/op (CLOCK_MONOTONIC, best of 3 rounds). Nothing is asserted: it prints.
 */
#include "metacache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static fs_entry make_entry(const char *name)
{
    fs_entry e;
    memset(&e, 0, sizeof(e));
    e.name = strdup(name);
    e.checksum = strdup("0123456789abcdef0123456789abcdef");
    e.size = 4096;
    e.mode = 0644;
    if (!e.name || !e.checksum) {
        perror("strdup");
        exit(1);
    }
    return e;
}

/* Existing names are "f%08zu" with even numbers; inserts use odd ones, spread
 * over the whole directory so every insert lands in the middle somewhere. */
static void bench(size_t n, size_t inserts, int rounds)
{
    double best_insert = 0, best_lookup = 0;
    for (int round = 0; round < rounds; round++) {
        metacache *mc = metacache_new((size_t)4 << 30);
        fs_entry *entries = calloc(n, sizeof(*entries));
        char name[32];
        for (size_t i = 0; i < n; i++) {
            snprintf(name, sizeof(name), "f%08zu", 2 * i);
            entries[i] = make_entry(name);
        }
        if (metacache_put(mc, "r", "d", entries, n, 0,
                          metacache_generation(mc, "r")) != 0) {
            fprintf(stderr, "put failed\n");
            exit(1);
        }
        size_t step = n / inserts ? n / inserts : 1;
        double t0 = now_ns();
        for (size_t k = 0; k < inserts; k++) {
            snprintf(name, sizeof(name), "f%08zu",
                     2 * ((k * step + k * 7919) % n) + 1);
            fs_entry e = make_entry(name);
            if (metacache_update_entry(mc, "r", "d", name, &e) != 0) {
                fprintf(stderr, "update failed\n");
                exit(1);
            }
            fs_entry_free(&e);
        }
        double per_insert = (now_ns() - t0) / (double)inserts;
        t0 = now_ns();
        size_t lookups = 100000, found = 0;
        for (size_t k = 0; k < lookups; k++) {
            snprintf(name, sizeof(name), "f%08zu", 2 * ((k * 7919) % n));
            found += metacache_lookup(mc, "r", "d", name, 0, NULL) == 1;
        }
        double per_lookup = (now_ns() - t0) / (double)lookups;
        if (found != lookups) {
            fprintf(stderr, "lookups missed\n");
            exit(1);
        }
        if (round == 0 || per_insert < best_insert)
            best_insert = per_insert;
        if (round == 0 || per_lookup < best_lookup)
            best_lookup = per_lookup;
        metacache_free(mc);
    }
    printf("%9zu entries: %12.0f ns/insert  %8.0f ns/lookup  (%zu inserts)\n",
           n, best_insert, best_lookup, inserts);
    fflush(stdout);
}

/* bench_metacache [MAX [once]]: sizes 1k, 10k, ... up to MAX (1M); with
 * "once", MAX alone and one round, e.g. for an instruction count with
 *   valgrind --tool=callgrind --toggle-collect=metacache_update_entry \
 *       build/bench_metacache 100000 once
 * (instructions collected / 2000 = instructions per insert). */
int main(int argc, char **argv)
{
    size_t max = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    if (argc > 2 && strcmp(argv[2], "once") == 0) {
        bench(max, 2000, 1);
        return 0;
    }
    for (size_t n = 1000; n <= max; n *= 10)
        bench(n, n >= 1000000 ? 200 : 2000, 3);
    return 0;
}
