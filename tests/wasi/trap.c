// A trap: main prints a line, then calls crash_here, which executes `unreachable`.
#include <stdio.h>

__attribute__((noinline)) void crash_here(void) {
    __builtin_trap();
}

int main(void) {
    printf("about to trap\n");
    fflush(stdout);
    crash_here();
    printf("not reached\n");
    return 0;
}
