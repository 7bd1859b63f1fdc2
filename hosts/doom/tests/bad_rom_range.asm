// cpvm-doom must end the run with a clear error: bad_rom_range
%isa = latest32
%import "ext_output_audio"
%import "ext_output_video"
%import "ext_rom_read"
%import "ext_rom_size"
%import "ext_stdout"
pub @ext_initialize:
    a0 = 0x20000
    a1 = 0xffffff00
    a2 = 0x1000
    ecalli 2
    ret
pub @ext_tick:
    ret
