#include "throttle/channel.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "grpc/grpc.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace throttle {
namespace {

// Whole milliseconds in [1, INT_MAX], as gRPC's integer arguments take them.
int Millis(absl::Duration d) {
  const int64_t ms = absl::ToInt64Milliseconds(d);
  return static_cast<int>(
      std::clamp<int64_t>(ms, 1, std::numeric_limits<int>::max()));
}

// One option of ChannelSecurity as each kind of user names it.
struct Option {
  const char* field;
  const char* flag;
  const char* env;
};

constexpr Option kCa = {"ca_file", "--tls_ca", kEnvTlsCa};
constexpr Option kCert = {"cert_file", "--tls_cert", kEnvTlsCert};
constexpr Option kKey = {"key_file", "--tls_key", kEnvTlsKey};
constexpr Option kToken = {"token", "--token", kEnvToken};
constexpr Option kTokenFile = {"token_file", "--token_file", kEnvTokenFile};
constexpr Option kServerName = {"server_name", "--tls_server_name",
                                kEnvTlsServerName};

// "ca_file (--tls_ca, THROTTLE_TLS_CA)": the start of each error, readable
// by a C++ caller and a throttlectl user alike.
std::string Name(const Option& option) {
  return absl::StrCat(option.field, " (", option.flag, ", ", option.env, ")");
}

absl::Status Invalid(const Option& option, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(Name(option), ": ", what));
}

absl::StatusOr<std::string> ReadFile(const Option& option,
                                     const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Invalid(option, absl::StrCat("cannot read \"", path,
                                        "\": ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return Invalid(option, absl::StrCat("cannot read \"", path, "\""));
  }
  return text.str();
}

// A PEM file: gRPC would only find a bad one at the first handshake, and
// report it as UNAVAILABLE on every call.
absl::StatusOr<std::string> ReadPem(const Option& option,
                                    const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFile(option, path);
  if (pem.ok() && !absl::StrContains(*pem, "-----BEGIN ")) {
    return Invalid(option, absl::StrCat("\"", path, "\" holds no PEM block"));
  }
  return pem;
}

// Why `token` cannot go into the authorization header; empty if it can.
// The token itself is never quoted: it is a secret.
std::string TokenProblem(absl::string_view token) {
  if (token.empty()) return "the token is empty";
  for (const char c : token) {
    if (c <= ' ' || c > '~') {
      return "the token holds a space, a control or a non-ASCII character, "
             "which cannot be sent in a header";
    }
  }
  return "";
}

// The token of `security`: the token itself, or the first line of the
// token file, trimmed. Empty when neither is set.
absl::StatusOr<std::string> Token(const ChannelSecurity& security) {
  if (!security.token.empty() && !security.token_file.empty()) {
    return Invalid(kToken, absl::StrCat("give either the token or ",
                                        Name(kTokenFile), ", not both"));
  }
  if (!security.token.empty()) {
    const std::string problem = TokenProblem(security.token);
    if (!problem.empty()) return Invalid(kToken, problem);
    return security.token;
  }
  if (security.token_file.empty()) return std::string();
  absl::StatusOr<std::string> text = ReadFile(kTokenFile, security.token_file);
  if (!text.ok()) return text.status();
  std::string token(absl::StripAsciiWhitespace(
      absl::string_view(*text).substr(0, text->find('\n'))));
  const std::string problem = TokenProblem(token);
  if (!problem.empty()) {
    return Invalid(kTokenFile,
                   absl::StrCat("the first line of \"", security.token_file,
                                "\": ", problem));
  }
  return token;
}

// Why `name` cannot be server_name; empty if it can. gRPC would take
// anything, and a list ("10.0.0.1,10.0.0.2") or a stray space would only
// show at the handshake, as "Peer name ... is not in peer certificate".
std::string ServerNameProblem(absl::string_view name) {
  for (const char c : name) {
    if (c <= ' ' || c > '~') {
      return "the name holds a space, a control or a non-ASCII character";
    }
    if (c == ',') {
      return "one name, not a list: the name every server of the target "
             "has in its certificate";
    }
  }
  return "";
}

}  // namespace

ChannelSecurity ChannelSecurityFromEnvironment(const ChannelSecurity& flags) {
  return ChannelSecurityFromEnvironment(
      flags, [](const char* name) -> const char* { return std::getenv(name); });
}

ChannelSecurity ChannelSecurityFromEnvironment(
    const ChannelSecurity& flags,
    absl::FunctionRef<const char*(const char*)> lookup) {
  auto env = [&](const char* name) {
    const char* value = lookup(name);
    return std::string(value == nullptr ? "" : value);
  };
  ChannelSecurity security = flags;
  if (security.ca_file.empty()) security.ca_file = env(kEnvTlsCa);
  if (security.cert_file.empty() && security.key_file.empty()) {
    security.cert_file = env(kEnvTlsCert);
    security.key_file = env(kEnvTlsKey);
  }
  if (security.token.empty() && security.token_file.empty()) {
    security.token = env(kEnvToken);
    security.token_file = env(kEnvTokenFile);
  }
  if (security.server_name.empty()) {
    security.server_name = env(kEnvTlsServerName);
  }
  return security;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const ChannelSecurity& security) {
  if (security.cert_file.empty() != security.key_file.empty()) {
    const Option& missing = security.cert_file.empty() ? kCert : kKey;
    const Option& given = security.cert_file.empty() ? kKey : kCert;
    return Invalid(missing, absl::StrCat("missing: a client certificate and "
                                         "its private key go together (",
                                         given.field, " is set)"));
  }
  absl::StatusOr<std::string> token = Token(security);
  if (!token.ok()) return token.status();
  if (!security.server_name.empty()) {
    const std::string problem = ServerNameProblem(security.server_name);
    if (!problem.empty()) {
      return Invalid(kServerName,
                     absl::StrCat("\"", absl::CHexEscape(security.server_name),
                                  "\": ", problem));
    }
  }
  const bool tls = !security.ca_file.empty() || !security.cert_file.empty();
  if (!tls) {
    if (!security.server_name.empty()) {
      return Invalid(
          kServerName,
          absl::StrCat("the name to check the server's certificate against "
                       "needs TLS, and this channel would be plaintext; give ",
                       Name(kCa), " to verify the server"));
    }
    if (!token->empty()) {
      return Invalid(
          security.token.empty() ? kTokenFile : kToken,
          absl::StrCat("a bearer token is sent over TLS only, and this "
                       "channel would be plaintext (gRPC refuses call "
                       "credentials on a plaintext channel); give ",
                       Name(kCa), " to verify the server"));
    }
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  if (!security.ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPem(kCa, security.ca_file);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
  }
  if (!security.cert_file.empty()) {
    absl::StatusOr<std::string> cert = ReadPem(kCert, security.cert_file);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem(kKey, security.key_file);
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::SslCredentials(ssl);
  if (!token->empty()) {
    credentials = grpc::CompositeChannelCredentials(
        credentials, grpc::AccessTokenCredentials(*token));
  }
  if (credentials == nullptr) {
    return absl::InvalidArgumentError(
        "gRPC refused the TLS credentials of ca_file, cert_file and key_file");
  }
  return credentials;
}

grpc::ChannelArguments ReconnectChannelArguments(absl::Duration backoff_initial,
                                                 absl::Duration backoff_max) {
  const int initial_ms = Millis(backoff_initial);
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, initial_ms);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              std::max(initial_ms, Millis(backoff_max)));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, Millis(kMinConnectTimeout));
  return args;
}

grpc::ChannelArguments ChannelArgumentsFor(const ChannelSecurity& security,
                                           absl::Duration backoff_initial,
                                           absl::Duration backoff_max) {
  grpc::ChannelArguments args =
      ReconnectChannelArguments(backoff_initial, backoff_max);
  if (!security.server_name.empty()) {
    args.SetSslTargetNameOverride(security.server_name);
  }
  return args;
}

std::shared_ptr<grpc::Channel> CreateInsecureChannel(
    const std::string& target, absl::Duration backoff_initial,
    absl::Duration backoff_max) {
  return grpc::CreateCustomChannel(
      target, grpc::InsecureChannelCredentials(),
      ReconnectChannelArguments(backoff_initial, backoff_max));
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateChannel(
    const std::string& target, const ChannelSecurity& security,
    absl::Duration backoff_initial, absl::Duration backoff_max) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeChannelCredentials(security);
  if (!credentials.ok()) return credentials.status();
  return grpc::CreateCustomChannel(
      target, *credentials,
      ChannelArgumentsFor(security, backoff_initial, backoff_max));
}

}  // namespace throttle
