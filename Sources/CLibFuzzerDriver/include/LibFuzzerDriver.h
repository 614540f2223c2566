#ifndef CARDDESK_LIBFUZZER_DRIVER_H
#define CARDDESK_LIBFUZZER_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's entry for a program with its own main (linked with -sanitize=fuzzer): runs the fuzzing loop with
/// the command-line options in argv, calling `callback` for each input. Only referenced in fuzzing builds.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
