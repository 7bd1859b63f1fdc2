/* Named caps on untrusted input, checked before any allocation. */
#ifndef CPVM_LIMITS_H
#define CPVM_LIMITS_H

#define LIMIT_CODE_SIZE        (32u * 1024u * 1024u) /* blob-format.md §6 */
#define LIMIT_JUMP_TABLE       (16u * 1024u * 1024u)
#define LIMIT_IMPORTS          1024u
#define LIMIT_BITMASK_MAX      24u                   /* longest skip */
#define LIMIT_INSN_MAX_LEN     25u
#define LIMIT_BLOB_SIZE        (1ull << 32)          /* lengths are u32 inside */
#define LIMIT_ASM_LINE         4096u

#define VM_PAGE_MIN            0x1000u
#define VM_PAGE_MAX            0x10000u              /* also region alignment G */
#define VM_ADDR_RETURN_TO_HOST 0xFFFF0000u
#define VM_CODE_ALIGN          2u                    /* dynamic jump address unit */
#define VM_FAULT_TRAP_BELOW    0x4000u               /* execution.md §3.3 */

#endif
