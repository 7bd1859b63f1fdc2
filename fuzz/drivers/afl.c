/* AFL++ driver. Built with afl-clang-fast / afl-clang-lto it runs in
 * persistent mode with shared-memory test cases (__AFL_FUZZ_INIT, __AFL_LOOP);
 * built with any other compiler it runs each file named on the command line,
 * or stdin when there is none, once (how `afl-fuzz ... -- ./afl_x @@` and a
 * plain replay both work).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

#define AFL_MAX_INPUT (1u << 20)

/* Runs one input from an exact-size copy, so ASan sees overreads. */
static void run_copy(const uint8_t *data, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) abort();
    memcpy(copy, data, len);
    LLVMFuzzerTestOneInput(copy, len);
    free(copy);
}

static int run_stream(FILE *f)
{
    uint8_t *buf = malloc(AFL_MAX_INPUT);
    if (!buf) return 1;
    size_t len = fread(buf, 1, AFL_MAX_INPUT, f);
    run_copy(buf, len);
    free(buf);
    return 0;
}

#ifdef __AFL_FUZZ_TESTCASE_LEN
__AFL_FUZZ_INIT();
#endif

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
#ifdef __AFL_FUZZ_TESTCASE_LEN
    if (argc < 2) {
        __AFL_INIT();
        const uint8_t *buf = __AFL_FUZZ_TESTCASE_BUF;
        while (__AFL_LOOP(10000)) {
            size_t len = (size_t)__AFL_FUZZ_TESTCASE_LEN;
            if (len > AFL_MAX_INPUT) len = AFL_MAX_INPUT;
            run_copy(buf, len);
        }
        return 0;
    }
#endif
    if (argc < 2) return run_stream(stdin);
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            perror(argv[i]);
            rc = 1;
            continue;
        }
        rc |= run_stream(f);
        fclose(f);
    }
    return rc;
}
