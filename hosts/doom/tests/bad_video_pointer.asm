// ext_initialize asks for a frame at an address outside guest memory (after guest_header.asm).
pub @ext_initialize:
    a0 = 0x100
    a1 = 640
    a2 = 400
    ecalli 1
    ret
