// Busy loops: `spin N` counts to N and prints it; `spin forever` never ends.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: spin N|forever\n");
        return 2;
    }
    volatile unsigned long counter = 0;
    if (strcmp(argv[1], "forever") == 0) {
        for (;;)
            counter++;
    }
    unsigned long n = strtoul(argv[1], NULL, 10);
    while (counter < n)
        counter++;
    printf("counted to %lu\n", (unsigned long)counter);
    return 0;
}
