// The small WASI program of the `process` benchmark: what `strata run` and
// `wasmtime run` cost as whole processes when the program itself does almost nothing.
#include <stdio.h>

int main(int argc, char **argv) {
    printf("hello from %s with %d argument(s)\n", argc > 0 ? argv[0] : "?", argc - 1);
    return 0;
}
