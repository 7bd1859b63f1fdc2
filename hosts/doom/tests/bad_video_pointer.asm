// cpvm-doom must end the run with a clear error: bad_video_pointer
%isa = latest32
%import "ext_output_audio"
%import "ext_output_video"
%import "ext_rom_read"
%import "ext_rom_size"
%import "ext_stdout"
pub @ext_initialize:
    a0 = 0x100
    a1 = 640
    a2 = 400
    ecalli 1
    ret
pub @ext_tick:
    ret
