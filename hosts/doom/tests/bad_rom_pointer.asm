// cpvm-doom must end the run with a clear error: bad_rom_pointer
%isa = latest32
%import "ext_output_audio"
%import "ext_output_video"
%import "ext_rom_read"
%import "ext_rom_size"
%import "ext_stdout"
pub @ext_initialize:
    a0 = 0xfffffff0
    a1 = 0
    a2 = 64
    ecalli 2
    ret
pub @ext_tick:
    ret
