// Channels of the client library (client-lib/): the one place that sets the
// gRPC channel arguments of the channels a Tank or a Controller makes from a
// target name.
//
// gRPC reconnects a channel that lost its server on its own schedule, not
// the Tank's: by default the attempts come 1 s, then x1.6 (+-20%) up to
// 120 s apart, so after a 30 s outage a worker waited up to 16 s more for
// its next attempt, whatever the Tank's own 2 s backoff cap. The arguments
// here make the channel's reconnect backoff that of the Tank (TankOptions),
// so that a worker reconnects within about its own cap after any outage.
//
// CreateChannel makes such a channel with TLS, mTLS or a bearer token from
// files (ChannelSecurity), for a Tank and a Controller alike; the same
// options are read from the environment by ChannelSecurityFromEnvironment.
// A caller that makes its own channel otherwise passes
// ReconnectChannelArguments() to grpc::CreateCustomChannel to get the same
// reconnect behaviour, and with TLS MakeChannelCredentials(security) and
// ChannelArgumentsFor(security) (which carries ChannelSecurity::server_name).
#ifndef THROTTLE_CHANNEL_H_
#define THROTTLE_CHANNEL_H_

#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace throttle {

// The client library's default backoff between attempts, for its own
// retries (TankOptions) and for the channel's reconnection alike.
inline constexpr absl::Duration kDefaultBackoffInitial = absl::Milliseconds(50);
inline constexpr absl::Duration kDefaultBackoffMax = absl::Seconds(2);

// The least time gRPC gives one connection attempt (C-core's
// GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, default 20 s): long enough for a
// handshake with a busy server over a slow link, short enough that an
// attempt whose SYN went unanswered (the server's host down) gives way to a
// fresh one soon after the host is back.
inline constexpr absl::Duration kMinConnectTimeout = absl::Seconds(5);

// Channel arguments that make gRPC reconnect after `backoff_initial`, the
// delay growing (x1.6, +-20% jitter: gRPC's own policy) up to `backoff_max`
// (GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, GRPC_ARG_MAX_RECONNECT_BACKOFF_MS),
// with kMinConnectTimeout per attempt (GRPC_ARG_MIN_RECONNECT_BACKOFF_MS).
// Values are whole milliseconds, at least 1; `backoff_max` is raised to
// `backoff_initial` if smaller. Never blocks.
grpc::ChannelArguments ReconnectChannelArguments(
    absl::Duration backoff_initial = kDefaultBackoffInitial,
    absl::Duration backoff_max = kDefaultBackoffMax);

// An insecure channel to `target` (a gRPC target name such as "host:port")
// with ReconnectChannelArguments(backoff_initial, backoff_max). Does not
// block and does not fail: connection problems show up in the calls.
std::shared_ptr<grpc::Channel> CreateInsecureChannel(
    const std::string& target,
    absl::Duration backoff_initial = kDefaultBackoffInitial,
    absl::Duration backoff_max = kDefaultBackoffMax);

// How a channel proves who the server is and who the client is: TLS with
// the server verified against `ca_file`, a client certificate (mTLS), and
// a bearer token sent as "authorization: Bearer TOKEN". Every field is
// optional; nothing set means plaintext. docs/clients.md ("TLS and tokens")
// lists each option with its throttlectl flag, its environment variable and
// its name in the Python and Node clients.
struct ChannelSecurity {
  // PEM roots the server's certificate must chain to. Empty: the channel is
  // plaintext, unless a client certificate is given (then gRPC's default
  // roots: the system's CA bundle). A token needs TLS, and so a CA file or
  // a client certificate: give the system bundle
  // (/etc/ssl/certs/ca-certificates.crt on Debian) for a server with a
  // publicly trusted certificate.
  std::string ca_file;
  // PEM client certificate (chain) and its private key, for mTLS: both or
  // neither.
  std::string cert_file;
  std::string key_file;
  // Bearer token, or a file whose first line (trimmed) is the token; at most
  // one of the two. The file is read again by each MakeChannelCredentials,
  // so a new channel picks up a rotated token.
  std::string token;
  std::string token_file;
  // The name the server's certificate must hold (a DNS name or an IP
  // address of its subject alternative names), also sent as the calls'
  // :authority. Empty: the host of the target, as gRPC takes it. Set it
  // for a multi-address target (ipv4:10.0.0.1:50051,10.0.0.2:50051, high
  // availability), which gRPC would otherwise check as one name ("Peer name
  // 10.0.0.1:50051,10.0.0.2:50051 is not in peer certificate"): the name
  // that every server of the cluster has in its certificate, such as
  // "throttle.example". A name, without a port. TLS only. CreateChannel
  // honours it; a caller that makes its own channel from
  // MakeChannelCredentials must pass ChannelArgumentsFor(security) (or call
  // grpc::ChannelArguments::SetSslTargetNameOverride itself): the
  // credentials alone do not carry it.
  std::string server_name;
};

// The environment variables of ChannelSecurity's fields.
inline constexpr char kEnvTlsCa[] = "THROTTLE_TLS_CA";
inline constexpr char kEnvTlsCert[] = "THROTTLE_TLS_CERT";
inline constexpr char kEnvTlsKey[] = "THROTTLE_TLS_KEY";
inline constexpr char kEnvToken[] = "THROTTLE_TOKEN";
inline constexpr char kEnvTokenFile[] = "THROTTLE_TOKEN_FILE";
inline constexpr char kEnvTlsServerName[] = "THROTTLE_TLS_SERVER_NAME";

// `flags` completed from the environment: a field comes from its variable
// (kEnvTlsCa, ..., kEnvTlsServerName; unset and empty are alike) unless the
// caller's flags
// set it. The pairs go together: when `flags` sets the certificate or the
// key, neither comes from the environment, and likewise for the token and
// the token file, so that a flag never mixes with half of a pair from the
// environment. Never fails (MakeChannelCredentials checks the result).
ChannelSecurity ChannelSecurityFromEnvironment(
    const ChannelSecurity& flags = ChannelSecurity());

// As above, reading variables through `lookup` (null for an unset one)
// instead of std::getenv: for tests.
ChannelSecurity ChannelSecurityFromEnvironment(
    const ChannelSecurity& flags,
    absl::FunctionRef<const char*(const char*)> lookup);

// The channel credentials `security` describes: insecure when nothing is
// set, else TLS (with the client certificate and the token as given).
// Reads the files now. INVALID_ARGUMENT naming the field (and its flag and
// variable) for a file that cannot be read or holds no PEM block, a
// certificate without its key or a key without its certificate, both a
// token and a token file, an empty token or one that cannot be sent in a
// header, and a token without TLS (no ca_file and no client certificate):
// gRPC would refuse it on a plaintext channel with a late "Invalid
// credentials" on every call. Likewise a server_name without TLS (there is
// no certificate to check it against) and one that is not a single name
// (a space, a comma, a control or non-ASCII character). The credentials do
// not carry server_name: see ChannelArgumentsFor. Does not block beyond
// reading the files.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const ChannelSecurity& security);

// The channel arguments of CreateChannel(target, security, backoff_initial,
// backoff_max): ReconnectChannelArguments(backoff_initial, backoff_max)
// and, when security.server_name is set,
// SetSslTargetNameOverride(server_name) (the name the server's certificate
// is checked against, and the calls' :authority). For a caller that makes
// its own channel:
//
//   auto credentials = throttle::MakeChannelCredentials(security);
//   if (!credentials.ok()) return credentials.status();
//   grpc::ChannelArguments args = throttle::ChannelArgumentsFor(security);
//   // ... args.SetInt(...) of its own ...
//   auto channel = grpc::CreateCustomChannel(target, *credentials, args);
//
// Never fails and reads no file: MakeChannelCredentials checks server_name.
grpc::ChannelArguments ChannelArgumentsFor(
    const ChannelSecurity& security,
    absl::Duration backoff_initial = kDefaultBackoffInitial,
    absl::Duration backoff_max = kDefaultBackoffMax);

// A channel to `target` with MakeChannelCredentials(security) and
// ChannelArgumentsFor(security, backoff_initial, backoff_max): what a Tank
// or a Controller is given to speak TLS (with security.server_name, also
// through a multi-address target). Fails as MakeChannelCredentials does;
// otherwise does not block: connection problems (an unreachable server, a
// refused handshake) show up in the calls as UNAVAILABLE.
absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateChannel(
    const std::string& target, const ChannelSecurity& security,
    absl::Duration backoff_initial = kDefaultBackoffInitial,
    absl::Duration backoff_max = kDefaultBackoffMax);

}  // namespace throttle

#endif  // THROTTLE_CHANNEL_H_
