// Arguments and environment: prints argc, every argv entry, every environment
// variable in order, and whether getenv finds the names given after `--getenv`.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

int main(int argc, char **argv) {
    printf("argc=%d\n", argc);
    int getenv_from = argc;
    for (int i = 0; i < argc; i++) {
        printf("argv[%d]=%s\n", i, argv[i]);
        if (i > 0 && getenv_from == argc && strcmp(argv[i], "--getenv") == 0)
            getenv_from = i + 1;
    }
    for (char **e = environ; *e; e++)
        printf("env %s\n", *e);
    for (int i = getenv_from; i < argc; i++) {
        const char *value = getenv(argv[i]);
        printf("getenv(%s)=%s\n", argv[i], value ? value : "(unset)");
    }
    return 0;
}
