/* A system call without libc: for the zygote (which has none) and for the
 * host's child between clone3 and exec (which must not take libc's locks). */
#ifndef CPVM_SANDBOX_RAW_SYSCALL_H
#define CPVM_SANDBOX_RAW_SYSCALL_H

static inline long raw_syscall6(long n, long a, long b, long c, long d, long e, long f)
{
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

#endif
