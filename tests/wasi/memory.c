// Memory limits: mallocs argv[1] MiB and touches every page; prints whether it
// worked. A refused memory.grow makes malloc return NULL, which is not an error.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: memory MIB\n");
        return 2;
    }
    size_t bytes = strtoul(argv[1], NULL, 10) << 20;
    char *p = malloc(bytes);
    if (p == NULL) {
        printf("malloc failed\n");
        return 0;
    }
    memset(p, 1, bytes);
    unsigned long sum = 0;
    for (size_t i = 0; i < bytes; i += 4096)
        sum += p[i];
    printf("malloc ok, %lu pages touched\n", sum);
    free(p);
    return 0;
}
