// The head of each bad-request guest (bad_*.asm follows it): the DOOM guest's
// imports in their order, and an ext_tick that does nothing. ext_initialize
// (in bad_*.asm) makes the one request that must end the run with an error.
%isa = latest32
%import "ext_output_audio"
%import "ext_output_video"
%import "ext_rom_read"
%import "ext_rom_size"
%import "ext_stdout"
pub @ext_tick:
    ret
