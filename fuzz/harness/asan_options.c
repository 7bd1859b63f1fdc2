/* Linked into every fuzz binary (replay, libFuzzer, AFL++): the compiler
 * backend turns guest faults into results with its own SIGSEGV handler, which
 * ASan allows only with allow_user_segv_handler=1. ASAN_OPTIONS from the
 * environment still override it; binaries without ASan never call it. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allow_user_segv_handler=1"; }
