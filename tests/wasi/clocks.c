// Clocks: CLOCK_MONOTONIC never goes back, CLOCK_REALTIME is within a minute of the
// host's time (argv[1], seconds since the epoch), and nanosleep(10ms) takes at least
// 10ms of monotonic time.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long nanos(clockid_t clock) {
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0) {
        perror("clock_gettime");
        exit(1);
    }
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: clocks HOST_UNIX_SECONDS\n");
        return 2;
    }
    long long host = atoll(argv[1]);

    long long previous = nanos(CLOCK_MONOTONIC);
    int backwards = 0;
    for (int i = 0; i < 10000; i++) {
        long long now = nanos(CLOCK_MONOTONIC);
        if (now < previous)
            backwards++;
        previous = now;
    }
    printf("monotonic went backwards %d times\n", backwards);

    struct timespec res;
    printf("monotonic resolution positive: %d\n",
           clock_getres(CLOCK_MONOTONIC, &res) == 0 && (res.tv_sec > 0 || res.tv_nsec > 0));

    long long real = nanos(CLOCK_REALTIME) / 1000000000LL;
    long long diff = real > host ? real - host : host - real;
    printf("realtime within a minute of host: %d\n", diff <= 60);
    if (diff > 60)
        printf("realtime %lld, host %lld\n", real, host);

    long long before = nanos(CLOCK_MONOTONIC);
    struct timespec ten_ms = {0, 10 * 1000 * 1000};
    if (nanosleep(&ten_ms, NULL) != 0) {
        perror("nanosleep");
        return 1;
    }
    long long slept = nanos(CLOCK_MONOTONIC) - before;
    printf("slept at least 10ms: %d\n", slept >= 10 * 1000 * 1000);
    if (slept < 10 * 1000 * 1000)
        printf("slept %lld ns\n", slept);
    return 0;
}
