// A register-only loop of 10^8 iterations (xorshift + counter): dispatch cost
// with no memory traffic. Returns the final state in a0.
%isa = latest64
pub @main:
    a0 = 0x9e3779b97f4a7c15
    a1 = 100000000
@loop:
    a2 = a0 << 13
    a0 = a0 ^ a2
    a2 = a0 >> 7
    a0 = a0 ^ a2
    a2 = a0 << 17
    a0 = a0 ^ a2
    a1 = a1 - 1
    jump @loop if a1 != 0
    ret
