// Exit statuses: argv[1] picks how the program ends after printing a line.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *how = argc > 1 ? argv[1] : "return0";
    printf("ending with %s\n", how);
    if (strcmp(how, "exit7") == 0)
        exit(7);
    if (strcmp(how, "exit256") == 0)
        exit(256);
    if (strcmp(how, "_Exit42") == 0) {
        fflush(stdout);
        _Exit(42);
    }
    if (strcmp(how, "return3") == 0)
        return 3;
    return 0;
}
