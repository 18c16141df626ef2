// A byte-copy loop over overlapping ranges of a 64 KiB buffer, in both directions, as
// memmove does it by hand. Built with -fno-builtin, so that the compiler keeps the
// loops instead of calling the C library's memmove.
#include "bench.h"

#define SIZE (64 * 1024)
static unsigned char buffer[SIZE + 256];

static void move(unsigned char *dst, const unsigned char *src, uint32_t n) {
    if (dst < src)
        for (uint32_t i = 0; i < n; i++) dst[i] = src[i];
    else
        for (uint32_t i = n; i > 0; i--) dst[i - 1] = src[i - 1];
}

int main(void) {
    for (uint32_t i = 0; i < sizeof buffer; i++) buffer[i] = (unsigned char)(i * 7 + 3);
    uint64_t check = 0;
    bench_start();
    for (uint32_t round = 0; round < 6000; round++) {
        uint32_t shift = 1 + round % 200;
        if (round & 1)
            move(buffer + shift, buffer, SIZE);
        else
            move(buffer, buffer + shift, SIZE);
        check += buffer[round % SIZE];
    }
    sink = check;
    bench_end();
    uint64_t sum = 0;
    for (uint32_t i = 0; i < sizeof buffer; i++) sum = sum * 31 + buffer[i];
    printf("check %llu sum %llu\n", (unsigned long long)check, (unsigned long long)sum);
    return 0;
}
