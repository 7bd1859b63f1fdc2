// Sieve of Eratosthenes over 10^7 numbers, one byte each: a memory- and
// branch-heavy baseline for `cpvm bench`. Returns the prime count in a0 (664579).
%isa = latest64
%rw_data_size = 10000000
pub @main:
    a0 = 10000000
    a1 = 2
    s0 = 0x20000            // flags[0] (rw data starts at 0x20000)
    a5 = 1
@outer:
    a2 = a1 * a1
    jump @count if a2 >=u a0
    a3 = s0 + a1
    a4 = u8 [a3]
    jump @next if a4 != 0
@inner:
    t0 = s0 + a2
    u8 [t0] = a5
    a2 = a2 + a1
    jump @inner if a2 <u a0
@next:
    a1 = a1 + 1
    jump @outer
@count:
    a1 = 2
    a2 = 0
@scan:
    a3 = s0 + a1
    a4 = u8 [a3]
    a4 = a4 ^ 1
    a2 = a2 + a4
    a1 = a1 + 1
    jump @scan if a1 <u a0
    a0 = a2
    ret
