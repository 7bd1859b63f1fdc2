# Turns the built zygote into a C array (cmake -DIN=... -DOUT=... -P embed.cmake),
# so the library carries it with no assembler tricks and no files at run time.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR size "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}" "/* Generated from the zygote ELF by vm/sandbox/zygote/embed.cmake. */\n#include <stddef.h>\n"
  "extern const unsigned char cpvm_zygote_image[];\nextern const size_t cpvm_zygote_image_len;\n"
  "const unsigned char cpvm_zygote_image[] = {\n${bytes}};\nconst size_t cpvm_zygote_image_len = ${size};\n")
