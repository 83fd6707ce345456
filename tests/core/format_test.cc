// Unit tests of server/format.h: doubles in error messages read back as the
// values the client sent.
#include "server/core/format.h"

#include <cstdlib>
#include <limits>

#include "gtest/gtest.h"

namespace throttle::server {
namespace {

TEST(FormatDoubleTest, ShowsTheValueSentNotSixDigits) {
  EXPECT_EQ(FormatDouble(2592001), "2592001");
  EXPECT_EQ(FormatDouble(2592000), "2592000");
  EXPECT_EQ(FormatDouble(10000000.5), "10000000.5");
  EXPECT_EQ(FormatDouble(1e7), "10000000");
  EXPECT_EQ(FormatDouble(0.1), "0.1");
  EXPECT_EQ(FormatDouble(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(FormatDouble(0), "0");
  EXPECT_EQ(FormatDouble(-1.5), "-1.5");
}

TEST(FormatDoubleTest, TinyAndHugeInScientificNotation) {
  EXPECT_EQ(FormatDouble(1e-12), "1e-12");
  EXPECT_EQ(FormatDouble(1e-7), "1e-07");
  EXPECT_EQ(FormatDouble(1e-4), "0.0001");
  EXPECT_EQ(FormatDouble(1e300), "1e+300");
  EXPECT_EQ(FormatDouble(1e16), "1e+16");
  EXPECT_EQ(FormatDouble(9999999999999998.0), "9999999999999998");
  EXPECT_EQ(FormatDouble(std::numeric_limits<double>::denorm_min()), "5e-324");
}

TEST(FormatDoubleTest, NotANumberAndInfinities) {
  EXPECT_EQ(FormatDouble(std::numeric_limits<double>::quiet_NaN()), "nan");
  EXPECT_EQ(FormatDouble(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(FormatDouble(-std::numeric_limits<double>::infinity()), "-inf");
}

TEST(FormatDoubleTest, ReadsBackExactly) {
  for (double value : {1.0 / 3, 2592000.0000000005, 123456.789e-9, 6.02e23,
                       -4.9e-5, 1.7976931348623157e308}) {
    EXPECT_EQ(std::strtod(FormatDouble(value).c_str(), nullptr), value)
        << FormatDouble(value);
  }
}

}  // namespace
}  // namespace throttle::server
