// Numbers in messages: how the server writes a double into an error
// message so that the client recognises the value it sent.
//
// Its own small library (no gRPC, no Abseil), used by the scheduler core
// and by throttlectl. absl::StrCat writes a double with six significant
// digits, which turned per_seconds 2592001 into "2.592e+06" and the limit
// 2592000 into the same text.
#ifndef THROTTLE_SERVER_CORE_FORMAT_H_
#define THROTTLE_SERVER_CORE_FORMAT_H_

#include <string>

namespace throttle::server {

// The shortest text that reads back as exactly `value` (round trip), in
// fixed notation for magnitudes in [1e-4, 1e16) and zero ("2592001",
// "0.1", "10000000", "0.30000000000000004"), in scientific notation
// otherwise ("1e-12", "1e+300"); "nan", "inf", "-inf". Python's repr() of
// a float makes the same choices (and adds ".0" to whole numbers). Never
// fails.
std::string FormatDouble(double value);

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_CORE_FORMAT_H_
