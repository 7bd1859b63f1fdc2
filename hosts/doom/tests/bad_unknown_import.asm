// cpvm-doom must end the run with a clear error: bad_unknown_import
%isa = latest32
%import "ext_output_audio"
%import "ext_output_video"
%import "ext_rom_read"
%import "ext_rom_size"
%import "ext_stdout"
pub @ext_initialize:
    ecalli 7
    ret
pub @ext_tick:
    ret
