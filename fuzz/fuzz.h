/*
 * fuzz.h - what the libFuzzer targets in fuzz/ share: the entry point's
 * prototype and a check that aborts (so the fuzzer reports the input) when
 * a parser breaks a promise its header makes. Never used by lakefuse itself.
 */
#ifndef LAKEFUSE_FUZZ_H
#define LAKEFUSE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: broken promise: %s\n", __FILE__,          \
                    __LINE__, #cond);                                         \
            abort();                                                          \
        }                                                                     \
    } while (0)

#endif
