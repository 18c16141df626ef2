// An open-addressing hash table of 2^20 slots: 700,000 inserts of random keys, then
// 4,000,000 lookups, half of them misses; multiplicative hashing, linear probing.
#include "bench.h"

#define SLOTS (1u << 20)
static uint64_t keys[SLOTS];
static uint32_t values[SLOTS];

static uint32_t slot_of(uint64_t key) {
    return (uint32_t)((key * 0x9e3779b97f4a7c15ULL) >> 44) & (SLOTS - 1);
}

static void insert(uint64_t key, uint32_t value) {
    uint32_t s = slot_of(key);
    while (keys[s] != 0 && keys[s] != key) s = (s + 1) & (SLOTS - 1);
    keys[s] = key;
    values[s] = value;
}

static int lookup(uint64_t key, uint32_t *value) {
    for (uint32_t s = slot_of(key);; s = (s + 1) & (SLOTS - 1)) {
        if (keys[s] == key) {
            *value = values[s];
            return 1;
        }
        if (keys[s] == 0) return 0;
    }
}

int main(void) {
    uint64_t hits = 0, sum = 0;
    bench_start();
    uint64_t state = 88172645463325252ULL;
    for (uint32_t i = 0; i < 700000; i++) insert(next_random(&state) | 1, i);
    for (int round = 0; round < 2; round++) {
        uint64_t again = 88172645463325252ULL;
        for (uint32_t i = 0; i < 1000000; i++) {
            uint32_t v;
            // A key that was inserted, then one that (being even) never was.
            if (lookup(next_random(&again) | 1, &v)) hits++, sum += v;
            if (lookup(next_random(&again) & ~1ULL, &v)) hits++, sum += v;
        }
    }
    sink = hits + sum;
    bench_end();
    printf("hits %llu sum %llu\n", (unsigned long long)hits, (unsigned long long)sum);
    return 0;
}
