/* cpvm as a protocol target (`cpvm serve`): answers HELLO, RUN and BYE on a
 * pair of file descriptors until BYE or end of input. */
#ifndef CPVM_FUZZ_EXTERNAL_SERVER_H
#define CPVM_FUZZ_EXTERNAL_SERVER_H

/* Returns the process exit code: 0 after BYE or a clean end of input, 1 when
 * the stream breaks (truncated frame, oversized frame, write failure). A bad
 * message gets an ERROR reply and the server keeps going. */
int xp_serve(int in_fd, int out_fd);

#endif
