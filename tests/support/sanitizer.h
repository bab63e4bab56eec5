// Whether this build runs under AddressSanitizer (scripts/test_sanitized.sh). Its shadow
// memory and its quarantine of freed blocks (256 MiB by default) make the process's
// resident set no measure of the library's own memory, so tests of peak RSS skip there.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define MST_TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MST_TEST_UNDER_ASAN 1
#endif
#endif

namespace mst::test {
#ifdef MST_TEST_UNDER_ASAN
inline constexpr bool kUnderAddressSanitizer = true;
#else
inline constexpr bool kUnderAddressSanitizer = false;
#endif
}  // namespace mst::test
