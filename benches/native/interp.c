// A stack-machine interpreter with a switch dispatch loop, running a fixed program:
// the sum over i < 10,000,000 of (i * i) mod 7919, kept in locals, about 120 million
// instructions.
#include "bench.h"

enum op { PUSH, LOAD, STORE, ADD, MUL, MOD, LT, JZ, JMP, HALT };

struct insn {
    enum op op;
    int64_t arg;
};

// locals: 0 = i, 1 = sum
static const struct insn program[] = {
    /* 0 */ {LOAD, 0},    {PUSH, 10000000}, {LT, 0},    {JZ, 17},
    /* 4 */ {LOAD, 0},    {LOAD, 0},       {MUL, 0},   {PUSH, 7919},
    /* 8 */ {MOD, 0},     {LOAD, 1},       {ADD, 0},   {STORE, 1},
    /* 12 */ {LOAD, 0},   {PUSH, 1},       {ADD, 0},   {STORE, 0},
    /* 16 */ {JMP, 0},    {HALT, 0},
};

static int64_t run(const struct insn *code) {
    int64_t stack[64], locals[4] = {0, 0, 0, 0};
    int sp = 0, pc = 0;
    for (;;) {
        const struct insn *in = &code[pc++];
        switch (in->op) {
        case PUSH: stack[sp++] = in->arg; break;
        case LOAD: stack[sp++] = locals[in->arg]; break;
        case STORE: locals[in->arg] = stack[--sp]; break;
        case ADD: sp--; stack[sp - 1] += stack[sp]; break;
        case MUL: sp--; stack[sp - 1] *= stack[sp]; break;
        case MOD: sp--; stack[sp - 1] %= stack[sp]; break;
        case LT: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; break;
        case JZ: if (stack[--sp] == 0) pc = (int)in->arg; break;
        case JMP: pc = (int)in->arg; break;
        case HALT: return locals[1];
        }
    }
}

int main(void) {
    bench_start();
    int64_t sum = run(program);
    sink = (uint64_t)sum;
    bench_end();
    printf("sum %lld\n", (long long)sum);
    return 0;
}
