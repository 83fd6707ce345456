// FUZZ_CHECK for the fuzz targets in tests/fuzz: a broken invariant prints
// where and what, then aborts, which libFuzzer reports as a crash and saves
// the input as a reproducer.
#ifndef THROTTLE_TESTS_FUZZ_FUZZ_CHECK_H_
#define THROTTLE_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                    \
  do {                                                                      \
    if (!(cond)) {                                                          \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                                  \
      std::abort();                                                         \
    }                                                                       \
  } while (0)

#endif  // THROTTLE_TESTS_FUZZ_FUZZ_CHECK_H_
