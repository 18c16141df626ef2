// Standard streams: echoes stdin to stdout upper-cased, reports how many bytes it
// read and their sum, and writes one line to stderr.
#include <ctype.h>
#include <stdio.h>

int main(void) {
    unsigned long count = 0, sum = 0;
    int c;
    while ((c = getchar()) != EOF) {
        count++;
        sum += (unsigned char)c;
        if (count <= 64)
            putchar(toupper(c));
    }
    if (ferror(stdin)) {
        perror("reading stdin");
        return 1;
    }
    printf("\nread %lu bytes, sum %lu\n", count, sum);
    fprintf(stderr, "this line goes to stderr\n");
    return 0;
}
