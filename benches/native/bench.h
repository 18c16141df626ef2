// What every kernel shares: the timed region, marked as Sightglass programs mark it.
//
// In the wasm build, bench_start and bench_end are the `bench.start` and `bench.end`
// imports that the benchmark's runner times between. The native build times the same
// region itself and prints `bench-ns N` on stderr. Results go through `sink` before
// bench_end, so the compiler cannot move the work out of the region.
#ifndef STRATA_BENCH_H
#define STRATA_BENCH_H

#include <stdint.h>
#include <stdio.h>

static volatile uint64_t sink;

#ifdef __wasm__
__attribute__((import_module("bench"), import_name("start"))) void bench_start(void);
__attribute__((import_module("bench"), import_name("end"))) void bench_end(void);
#else
#include <time.h>

static struct timespec bench_began;

static void bench_start(void) { clock_gettime(CLOCK_MONOTONIC, &bench_began); }

static void bench_end(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long ns = (long long)(now.tv_sec - bench_began.tv_sec) * 1000000000LL +
                   (now.tv_nsec - bench_began.tv_nsec);
    fprintf(stderr, "bench-ns %lld\n", ns);
}
#endif

// A small deterministic generator (xorshift64), the same on every target.
static uint64_t next_random(uint64_t *state) {
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

#endif
