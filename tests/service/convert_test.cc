// Conversions at the service boundary that need no server: the throttle
// spec of --throttle and --config, mode names, and the partial configure
// of ConfigureThrottleRequest.update_mask.
#include "server/service/convert.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace throttle::server {
namespace {

using ::testing::HasSubstr;

TEST(ParseThrottleSpec, ModeNamesAreSpelledAsInThrottlectl) {
  // One parser of mode names: case-insensitive, '_' as '-'.
  for (const char* spelling :
       {"monitor-only", "monitor_only", "Monitor-Only"}) {
    auto parsed =
        ParseThrottleSpec(absl::StrCat("m max_n=1 per=1 mode=", spelling));
    ASSERT_TRUE(parsed.ok()) << spelling << ": " << parsed.status();
    EXPECT_EQ(parsed->second.mode, Mode::kMonitorOnly) << spelling;
  }
  auto bucket = ParseThrottleSpec("b max_n=10 per=2 mode=bucket burst=5");
  ASSERT_TRUE(bucket.ok()) << bucket.status();
  EXPECT_EQ(bucket->second.mode, Mode::kBucket);
  EXPECT_EQ(bucket->second.burst, 5);
}

TEST(ParseThrottleSpec, AnAdaptiveKeyMakesTheThrottleAdaptive) {
  auto plain = ParseThrottleSpec("p max_n=100 per=1");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->second.adaptive.has_value());
  auto parsed = ParseThrottleSpec(
      "a max_n=300 per=1 adaptive_floor_n=10 adaptive_target=0.1 "
      "adaptive_window=500ms adaptive_increase_n=5 adaptive_decrease=0.7 "
      "adaptive_min_outcomes=20");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_TRUE(parsed->second.adaptive.has_value());
  const AdaptiveConfig& a = *parsed->second.adaptive;
  EXPECT_EQ(a.floor_n, 10);
  EXPECT_DOUBLE_EQ(a.target_rejection_ratio, 0.1);
  EXPECT_EQ(a.window, absl::Milliseconds(500));
  EXPECT_EQ(a.increase_n, 5);
  EXPECT_DOUBLE_EQ(a.decrease_factor, 0.7);
  EXPECT_EQ(a.min_outcomes, 20);
  // One key alone: the others keep their defaults.
  auto one = ParseThrottleSpec("o max_n=300 per=1 adaptive_floor_n=50");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->second.adaptive->min_outcomes, AdaptiveConfig().min_outcomes);
  // Checked as in CreateThrottle, naming the field and the value.
  auto bad = ParseThrottleSpec("b max_n=100 per=1 adaptive_floor_n=200");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(),
              HasSubstr("config.adaptive.floor_n must be in [1, max_n = "
                        "100], got 200"));
  auto unknown = ParseThrottleSpec("u max_n=100 per=1 adaptive_ceiling=5");
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.status().message(), HasSubstr("adaptive_ceiling=5"));
}

TEST(ParseThrottleSpec, UnknownModeNamesTheValueAndTheChoices) {
  auto parsed = ParseThrottleSpec("x max_n=1 per=1 mode=turbo");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(parsed.status().message(), HasSubstr("turbo"));
  EXPECT_THAT(parsed.status().message(), HasSubstr("monitor-only"));
}

TEST(ParseThrottleSpec, DurationsInTheOneSyntaxOrPlainSeconds) {
  // The example: the config refused per=1s. Now per=1, per=1s and
  // per=1000ms are the same throttle, and catch_up reads the same way.
  for (const char* per : {"1", "1s", "1000ms", "1.0"}) {
    auto parsed = ParseThrottleSpec(absl::StrCat("t max_n=4 per=", per));
    ASSERT_TRUE(parsed.ok()) << per << ": " << parsed.status();
    EXPECT_EQ(parsed->second.per, absl::Seconds(1)) << per;
  }
  auto minute = ParseThrottleSpec("t max_n=600 per=2m catch_up=1.5s");
  ASSERT_TRUE(minute.ok()) << minute.status();
  EXPECT_EQ(minute->second.per, absl::Minutes(2));
  EXPECT_EQ(minute->second.catch_up, absl::Milliseconds(1500));
}

TEST(ParseThrottleSpec, WarmUpInTheOneDurationSyntax) {
  auto parsed =
      ParseThrottleSpec("t max_n=100 per=1s warm_up=2m warm_up_from=0.25");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->second.warm_up, absl::Minutes(2));
  EXPECT_EQ(parsed->second.warm_up_from, 0.25);
  parsed = ParseThrottleSpec("t max_n=100 per=1 warm_up=30");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->second.warm_up, absl::Seconds(30));
}

TEST(ParseThrottleSpec, StarvationBoundInTheOneDurationSyntax) {
  auto parsed = ParseThrottleSpec("t max_n=100 per=1s starvation_bound=2500ms");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->second.starvation_bound, absl::Milliseconds(2500));
  parsed = ParseThrottleSpec("t max_n=4 per=1 starvation_bound=soon");
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(std::string(parsed.status().message()),
              ::testing::HasSubstr("starvation_bound=soon"));
  parsed = ParseThrottleSpec("t max_n=4 per=1 starvation_bound=-1s");
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(std::string(parsed.status().message()),
              ::testing::HasSubstr("config.starvation_bound must be in"));
}

TEST(ParseThrottleSpec, BadWarmUpNamesThePartAndTheValue) {
  auto parsed = ParseThrottleSpec("t max_n=4 per=1 warm_up=later");
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(parsed.status().message(), HasSubstr("warm_up=later"));
  EXPECT_THAT(parsed.status().message(), HasSubstr("250ms"));
  parsed = ParseThrottleSpec("t max_n=4 per=1 warm_up=1m warm_up_from=x");
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(parsed.status().message(), HasSubstr("warm_up_from=x"));
  parsed = ParseThrottleSpec("t max_n=4 per=1 warm_up=1m warm_up_from=1.5");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message(),
            "throttle t: config.warm_up_from must be in (0, 1] (0 = 1/3), "
            "got 1.5");
  parsed = ParseThrottleSpec("t max_n=4 per=1 warm_up=-1s");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message(),
            "throttle t: config.warm_up must be in [0, 30 days], got -1s");
}

TEST(ParseThrottleSpec, BadDurationNamesThePartAndTheSyntax) {
  auto parsed = ParseThrottleSpec("t max_n=4 per=1 sec");
  ASSERT_FALSE(parsed.ok());
  parsed = ParseThrottleSpec("t max_n=4 per=soon");
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(parsed.status().message(), HasSubstr("per=soon"));
  EXPECT_THAT(parsed.status().message(), HasSubstr("250ms"));
}

}  // namespace
// The case: `throttlectl configure api --max_n=200` on a bucket
// throttle with burst 20 turned it smooth. With a mask only max_n changes.
ThrottleConfig Bucket20() {
  ThrottleConfig config;
  config.max_n = 100;
  config.per = absl::Seconds(1);
  config.mode = Mode::kBucket;
  config.burst = 20;
  config.manual_emit = true;
  config.catch_up = absl::Milliseconds(50);
  return config;
}

google::protobuf::FieldMask Mask(std::initializer_list<const char*> paths) {
  google::protobuf::FieldMask mask;
  for (const char* path : paths) mask.add_paths(path);
  return mask;
}

TEST(ApplyConfigUpdate, MaskChangesOnlyTheNamedFields) {
  v1::ThrottleConfig update;  // only max_n is read; the rest is ignored
  update.set_max_n(200);
  auto merged = ApplyConfigUpdate(Bucket20(), update, Mask({"max_n"}));
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->max_n, 200);
  EXPECT_EQ(merged->per, absl::Seconds(1));
  EXPECT_EQ(merged->mode, Mode::kBucket);
  EXPECT_EQ(merged->burst, 20);
  EXPECT_TRUE(merged->manual_emit);
  EXPECT_EQ(merged->catch_up, absl::Milliseconds(50));
}

TEST(ApplyConfigUpdate, WarmUpPathsChangeOnlyTheWarmUp) {
  ThrottleConfig current = Bucket20();
  current.warm_up = absl::Seconds(30);
  current.warm_up_from = 0.25;
  v1::ThrottleConfig update;
  update.set_warm_up_from(0.5);
  auto merged = ApplyConfigUpdate(current, update, Mask({"warm_up_from"}));
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->warm_up, absl::Seconds(30));
  EXPECT_EQ(merged->warm_up_from, 0.5);
  EXPECT_EQ(merged->burst, 20);
  EXPECT_EQ(merged->catch_up, absl::Milliseconds(50));
  // A named but unset warm_up: none; the fraction is kept.
  merged = ApplyConfigUpdate(*merged, v1::ThrottleConfig(), Mask({"warm_up"}));
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->warm_up, absl::ZeroDuration());
  EXPECT_EQ(merged->warm_up_from, 0.5);
  // Not named: kept.
  update.Clear();
  update.set_max_n(7);
  current.warm_up_from = 0;
  merged = ApplyConfigUpdate(current, update, Mask({"max_n"}));
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->warm_up, absl::Seconds(30));
  EXPECT_EQ(merged->warm_up_from, 0);  // stored as configured, not 1/3
}

TEST(ToProto, ListsTheWarmUpWithTheDefaultFractionFilledIn) {
  ThrottleConfig config = Bucket20();
  EXPECT_FALSE(ToProto(config).has_warm_up());
  EXPECT_EQ(ToProto(config).warm_up_from(), 0);
  config.warm_up = absl::Milliseconds(1500);
  const v1::ThrottleConfig listed = ToProto(config);
  EXPECT_EQ(listed.warm_up().seconds(), 1);
  EXPECT_EQ(listed.warm_up().nanos(), 500'000'000);
  EXPECT_DOUBLE_EQ(listed.warm_up_from(), 1.0 / 3);
  // And it reads back as the same throttle.
  auto back = FromProto(listed);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->warm_up, config.warm_up);
  EXPECT_DOUBLE_EQ(back->EffectiveWarmUpFrom(), 1.0 / 3);
}

TEST(ApplyConfigUpdate, EmptyMaskReplacesTheConfigWhole) {
  // Compatibility: a request without update_mask, as before it existed.
  v1::ThrottleConfig update;
  update.set_max_n(200);
  update.set_per_seconds(2);
  for (const auto& mask : {Mask({}), Mask({"*"})}) {
    auto merged = ApplyConfigUpdate(Bucket20(), update, mask);
    ASSERT_TRUE(merged.ok()) << merged.status();
    EXPECT_EQ(merged->max_n, 200);
    EXPECT_EQ(merged->per, absl::Seconds(2));
    EXPECT_EQ(merged->mode, Mode::kSmooth);
    EXPECT_EQ(merged->burst, 0);
    EXPECT_FALSE(merged->manual_emit);
    EXPECT_FALSE(merged->catch_up.has_value());
  }
}

TEST(ApplyConfigUpdate, NamedButUnsetFieldTakesItsDefault) {
  v1::ThrottleConfig update;  // catch_up unset: the server's default again
  auto merged =
      ApplyConfigUpdate(Bucket20(), update, Mask({"catch_up", "manual_emit"}));
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_FALSE(merged->catch_up.has_value());
  EXPECT_FALSE(merged->manual_emit);
  EXPECT_EQ(merged->burst, 20);
}

TEST(ApplyConfigUpdate, SwitchingAwayFromBucketResetsBurstUnlessNamed) {
  v1::ThrottleConfig update;
  update.set_mode(v1::MODE_SMOOTH);
  auto merged = ApplyConfigUpdate(Bucket20(), update, Mask({"mode"}));
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->mode, Mode::kSmooth);
  EXPECT_EQ(merged->burst, 0);
  EXPECT_EQ(merged->max_n, 100);
  // Named too, the burst is what was sent, and validated as a whole.
  update.set_burst(20);
  merged = ApplyConfigUpdate(Bucket20(), update, Mask({"mode", "burst"}));
  ASSERT_FALSE(merged.ok());
  EXPECT_EQ(merged.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(merged.status().message(), HasSubstr("burst"));
}

TEST(ApplyConfigUpdate, MergedConfigIsValidatedAsAWhole) {
  v1::ThrottleConfig update;
  update.set_per_seconds(0.01);  // below the kept catch_up of 50 ms
  auto merged = ApplyConfigUpdate(Bucket20(), update, Mask({"per_seconds"}));
  ASSERT_FALSE(merged.ok());
  EXPECT_EQ(merged.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(merged.status().message(), HasSubstr("catch_up"));
}

TEST(ApplyConfigUpdate, UnknownPathIsInvalidArgumentNamingMaskAndPath) {
  v1::ThrottleConfig update;
  update.set_max_n(200);
  for (const char* bad : {"maxN", "config.max_n", "name", "*"}) {
    auto merged = ApplyConfigUpdate(Bucket20(), update, Mask({"max_n", bad}));
    ASSERT_FALSE(merged.ok()) << bad;
    EXPECT_EQ(merged.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(merged.status().message(), HasSubstr("update_mask"));
    EXPECT_THAT(merged.status().message(), HasSubstr(bad));
  }
}

namespace {

// Graceful degradation: the policy and its bound, validated and listed.
TEST(FromProto, LocalShareForIsRequiredWithLocalShareAndOnlyThere) {
  v1::ThrottleConfig config;
  config.set_max_n(10);
  config.set_per_seconds(1);
  config.set_degradation(v1::DEGRADATION_LOCAL_SHARE);
  auto missing = FromProto(config);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(),
              HasSubstr("config.local_share_for must be in (0, 1 hour]"));
  EXPECT_THAT(missing.status().message(), HasSubstr("got 0"));
  config.mutable_local_share_for()->set_seconds(7200);
  auto long_one = FromProto(config);
  ASSERT_FALSE(long_one.ok());
  EXPECT_THAT(long_one.status().message(), HasSubstr("got 2h"));
  config.mutable_local_share_for()->set_seconds(10);
  auto good = FromProto(config);
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->degradation, Degradation::kLocalShare);
  EXPECT_EQ(good->local_share_for, absl::Seconds(10));
  const v1::ThrottleConfig listed = ToProto(*good);
  EXPECT_EQ(listed.degradation(), v1::DEGRADATION_LOCAL_SHARE);
  EXPECT_EQ(listed.local_share_for().seconds(), 10);
  config.set_degradation(v1::DEGRADATION_FAIL_FAST);
  auto stray = FromProto(config);
  ASSERT_FALSE(stray.ok());
  EXPECT_THAT(stray.status().message(), HasSubstr("got 10s"));
  config.set_degradation(static_cast<v1::Degradation>(9));
  auto unknown = FromProto(config);
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.status().message(),
              HasSubstr("config.degradation has no such value: 9"));
}

TEST(ApplyConfigUpdate, DegradationPathsChangeOnlyThePolicy) {
  v1::ThrottleConfig update;
  update.set_degradation(v1::DEGRADATION_LOCAL_SHARE);
  update.mutable_local_share_for()->set_seconds(3);
  auto merged = ApplyConfigUpdate(Bucket20(), update,
                                  Mask({"degradation", "local_share_for"}));
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->degradation, Degradation::kLocalShare);
  EXPECT_EQ(merged->local_share_for, absl::Seconds(3));
  EXPECT_EQ(merged->max_n, Bucket20().max_n);
  EXPECT_EQ(merged->mode, Mode::kBucket);
}

TEST(ApplyConfigUpdate,
     SwitchingAwayFromLocalShareDropsLocalShareForUnlessNamed) {
  ThrottleConfig current = Bucket20();
  current.degradation = Degradation::kLocalShare;
  current.local_share_for = absl::Seconds(10);
  v1::ThrottleConfig update;
  update.set_degradation(v1::DEGRADATION_FAIL_FAST);
  auto merged = ApplyConfigUpdate(current, update, Mask({"degradation"}));
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->degradation, Degradation::kFailFast);
  EXPECT_EQ(merged->local_share_for, absl::ZeroDuration());
  // Named too, it is what was sent, and validated as a whole.
  update.mutable_local_share_for()->set_seconds(10);
  merged = ApplyConfigUpdate(current, update,
                             Mask({"degradation", "local_share_for"}));
  ASSERT_FALSE(merged.ok());
  EXPECT_EQ(merged.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(merged.status().message(), HasSubstr("local_share_for"));
}

TEST(ParseThrottleSpec, DegradationKeys) {
  auto spec = ParseThrottleSpec(
      "t max_n=5 per=1 degradation=local_share local_share_for=10s");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->second.degradation, Degradation::kLocalShare);
  EXPECT_EQ(spec->second.local_share_for, absl::Seconds(10));
  auto bad = ParseThrottleSpec("t max_n=5 per=1 degradation=panic");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(),
              HasSubstr("degradation \"panic\" is not one of wait, "
                        "fail_fast, local_share"));
}

}  // namespace
}  // namespace throttle::server
