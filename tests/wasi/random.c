// Randomness: two getentropy calls of 32 bytes each are not all zero and differ.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int all_zero(const unsigned char *buf, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (buf[i] != 0)
            return 0;
    return 1;
}

int main(void) {
    unsigned char a[32], b[32];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    if (getentropy(a, sizeof a) != 0 || getentropy(b, sizeof b) != 0) {
        perror("getentropy");
        return 1;
    }
    printf("first all zero: %d\n", all_zero(a, sizeof a));
    printf("second all zero: %d\n", all_zero(b, sizeof b));
    printf("calls differ: %d\n", memcmp(a, b, sizeof a) != 0);
    return 0;
}
