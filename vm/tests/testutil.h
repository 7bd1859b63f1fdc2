/* Shared helpers for the cmocka tests. */
#ifndef CPVM_TESTUTIL_H
#define CPVM_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cpvm.h"

/* Whole file, malloc'd and NUL-terminated; NULL if unreadable. */
uint8_t *tu_read_file(const char *path, size_t *len);

/* The conformance vectors: $CPVM_CONFORMANCE_DIR, else ../shared/conformance. */
const char *tu_conformance_dir(void);
/* $CPVM_SOURCE_DIR (set by CTest), else ".". */
const char *tu_source_dir(void);

/* A raw program from instructions given as hex strings, one per instruction
 * start, e.g. {"c8 87 09", "00"}; `jt` entries with size 0 = minimal. */
uint8_t *tu_raw_program(const char *const *insns, size_t n, const uint32_t *jt, size_t jt_n, size_t *len);

/* Parses hex ("c8 87 09" or "c88709") into out; returns the byte count. */
size_t tu_hex(const char *hex, uint8_t *out, size_t cap);

/* Sorted *.json / given-suffix file names of a directory (malloc'd, NULL-terminated). */
char **tu_list_dir(const char *dir, const char *suffix);
void tu_free_list(char **list);

#endif
