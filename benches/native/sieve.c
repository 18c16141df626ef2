// Sieve of Eratosthenes over 4 Mi numbers, 12 times: byte stores with a stride and a
// loop-carried scan.
#include "bench.h"

#define LIMIT (1 << 22)
static unsigned char composite[LIMIT];

int main(void) {
    uint64_t primes = 0;
    bench_start();
    for (int round = 0; round < 12; round++) {
        for (int i = 0; i < LIMIT; i++) composite[i] = 0;
        primes = 0;
        for (uint64_t i = 2; i < LIMIT; i++) {
            if (composite[i]) continue;
            primes++;
            for (uint64_t j = i * i; j < LIMIT; j += i) composite[j] = 1;
        }
        sink = primes;
    }
    bench_end();
    printf("primes below %d: %llu\n", LIMIT, (unsigned long long)primes);
    return 0;
}
