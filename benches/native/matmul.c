// Dense 320x320 double-precision matrix multiply (i-k-j order), 10 times.
#include "bench.h"

#define N 320
static double a[N][N], b[N][N], c[N][N];

int main(void) {
    uint64_t state = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            a[i][j] = (double)(next_random(&state) % 1000) / 100.0;
            b[i][j] = (double)(next_random(&state) % 1000) / 100.0;
        }
    bench_start();
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) c[i][j] = 0.0;
        for (int i = 0; i < N; i++)
            for (int k = 0; k < N; k++) {
                double aik = a[i][k];
                for (int j = 0; j < N; j++) c[i][j] += aik * b[k][j];
            }
        sink = (uint64_t)c[round][round];
    }
    bench_end();
    double trace = 0.0;
    for (int i = 0; i < N; i++) trace += c[i][i];
    printf("trace %.4f\n", trace);
    return 0;
}
