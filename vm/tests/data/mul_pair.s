// Two independent multiplications and a trap: the second waits for the one
// multiplier (gas.md §5; the reference's test_resource_limits_mul timeline).
pub @main:
    a0 = a1 * a2
    a1 = a3 * a4
    trap
