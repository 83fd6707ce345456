#include "server/security/security.h"

#include <sys/stat.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "grpcpp/security/auth_context.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "server/security/text_file.h"
#include "server/service/log.h"

namespace throttle::server {
namespace {

// What changes when a file is replaced: its modification time and size.
std::string Stamp(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return "";
  return absl::StrCat(st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, "/",
                      st.st_size, "/", st.st_ino);
}

std::string Property(const grpc::AuthContext& auth, const char* name) {
  for (const grpc::string_ref& value : auth.FindPropertyValues(name)) {
    return std::string(value.data(), value.size());
  }
  return "";
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const SecurityOptions& options) {
  if (options.tls_cert.empty() && options.tls_key.empty()) {
    if (!options.tls_client_ca.empty()) {
      return absl::InvalidArgumentError(
          "--tls_client_ca needs --tls_cert and --tls_key (mTLS is TLS with "
          "client certificates)");
    }
    return grpc::InsecureServerCredentials();
  }
  if (options.tls_cert.empty() || options.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert and --tls_key go together (the server's certificate and "
        "its private key)");
  }
  for (const auto& [flag, path] :
       {std::pair<absl::string_view, std::string>{"tls_cert", options.tls_cert},
        {"tls_key", options.tls_key},
        {"tls_client_ca", options.tls_client_ca}}) {
    if (path.empty()) continue;
    if (absl::StatusOr<std::string> pem = ReadTextFile(flag, path); !pem.ok()) {
      return pem.status();
    }
  }
  const unsigned int refresh = static_cast<unsigned int>(
      std::max<int64_t>(1, absl::ToInt64Seconds(options.reload_interval)));
  std::shared_ptr<grpc::experimental::CertificateProviderInterface> provider;
  if (options.tls_client_ca.empty()) {
    provider =
        std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
            options.tls_key, options.tls_cert, refresh);
  } else {
    provider =
        std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
            options.tls_key, options.tls_cert, options.tls_client_ca, refresh);
  }
  grpc::experimental::TlsServerCredentialsOptions tls(provider);
  tls.watch_identity_key_cert_pairs();
  if (options.tls_client_ca.empty()) {
    tls.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    tls.watch_root_certs();
    tls.set_cert_request_type(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  std::shared_ptr<grpc::ServerCredentials> credentials =
      grpc::experimental::TlsServerCredentials(tls);
  if (credentials == nullptr) {
    return absl::InvalidArgumentError(
        "--tls_cert/--tls_key: gRPC refused the TLS configuration");
  }
  return credentials;
}

absl::StatusOr<std::unique_ptr<Authorizer>> Authorizer::Start(
    const SecurityOptions& options) {
  std::unique_ptr<Authorizer> authorizer(new Authorizer(options));
  if (absl::Status s = authorizer->Reload(/*first=*/true); !s.ok()) return s;
  if (!options.policy_file.empty() || !options.token_file.empty()) {
    authorizer->watcher_ = std::thread([a = authorizer.get()] { a->Watch(); });
  }
  return authorizer;
}

Authorizer::~Authorizer() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (watcher_.joinable()) watcher_.join();
}

void Authorizer::Watch() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                               options_.reload_interval)) {
        return;
      }
    }
    Reload(/*first=*/false).IgnoreError();  // logged inside
  }
}

absl::Status Authorizer::Reload(bool first) {
  std::string policy_stamp, tokens_stamp;
  {
    absl::MutexLock lock(&mu_);
    policy_stamp = policy_stamp_;
    tokens_stamp = tokens_stamp_;
  }
  auto reload = [&](const std::string& path, const std::string& last, auto load,
                    auto install) -> absl::Status {
    if (path.empty()) return absl::OkStatus();
    const std::string stamp = Stamp(path);
    if (!first && stamp == last) return absl::OkStatus();
    auto loaded = load(path);
    if (!loaded.ok()) {
      if (!first) {
        Log(LogLevel::kError, "security_file_rejected",
            {{"file", path},
             {"error", std::string(loaded.status().message())},
             {"kept", "the previous version"}});
        absl::MutexLock lock(&mu_);
        install(nullptr, stamp);  // do not complain again until it changes
      }
      return loaded.status();
    }
    if (!first)
      Log(LogLevel::kInfo, "security_file_reloaded", {{"file", path}});
    absl::MutexLock lock(&mu_);
    install(&*loaded, stamp);
    return absl::OkStatus();
  };
  absl::Status policy = reload(
      options_.policy_file, policy_stamp,
      [](const std::string& p) { return Policy::Load(p); },
      [this](Policy* loaded, const std::string& stamp)
          ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
            policy_stamp_ = stamp;
            if (loaded != nullptr) {
              policy_ = std::make_shared<const Policy>(std::move(*loaded));
            }
          });
  if (!policy.ok() && first) return policy;
  absl::Status tokens = reload(
      options_.token_file, tokens_stamp,
      [](const std::string& p) { return TokenFile::Load(p); },
      [this](TokenFile* loaded, const std::string& stamp)
          ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
            tokens_stamp_ = stamp;
            if (loaded != nullptr) {
              tokens_ = std::make_shared<const TokenFile>(std::move(*loaded));
            }
          });
  if (!tokens.ok() && first) return tokens;
  return absl::OkStatus();
}

absl::StatusOr<std::string> Authorizer::Identify(
    const grpc::ServerContextBase& context) const {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  // "ssl" for SslServerCredentials, "tls" for the TlsServerCredentials
  // this server uses (grpc_security_constants.h has both).
  const std::string transport =
      auth == nullptr ? "" : Property(*auth, "transport_security_type");
  const bool tls = transport == "ssl" || transport == "tls";
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    const absl::string_view header(it->second.data(), it->second.size());
    if (!tls) {
      return absl::UnauthenticatedError(
          "bearer tokens are accepted over TLS only; this connection is "
          "plaintext");
    }
    absl::string_view token = header;
    if (!absl::ConsumePrefix(&token, "Bearer ")) {
      return absl::UnauthenticatedError(
          "the authorization header must be \"Bearer TOKEN\"");
    }
    std::shared_ptr<const TokenFile> tokens;
    {
      absl::MutexLock lock(&mu_);
      tokens = tokens_;
    }
    const std::string identity =
        tokens == nullptr ? "" : tokens->IdentityOf(token);
    if (identity.empty()) {
      return absl::UnauthenticatedError(
          "the bearer token is not listed in the server's token file");
    }
    return identity;
  }
  if (!tls || !auth->IsPeerAuthenticated()) return std::string();
  if (std::string spiffe = Property(*auth, "peer_spiffe_id"); !spiffe.empty()) {
    return spiffe;
  }
  return Property(*auth, "x509_subject");
}

absl::Status Authorizer::Check(const grpc::ServerContextBase& context,
                               absl::string_view method,
                               absl::string_view throttle,
                               std::string* identity) const {
  absl::StatusOr<std::string> who = Identify(context);
  if (!who.ok()) return who.status();
  if (identity != nullptr) *identity = *who;
  std::shared_ptr<const Policy> policy;
  {
    absl::MutexLock lock(&mu_);
    policy = policy_;
  }
  if (policy == nullptr) return absl::OkStatus();
  if (who->empty()) {
    return absl::UnauthenticatedError(absl::StrCat(
        method,
        ": this server has a policy; the call proves no identity (a client "
        "certificate or a bearer token)"));
  }
  const bool allowed = throttle.empty()
                           ? policy->HasRole(*who, Role::kController)
                           : policy->Allows(*who, method, throttle);
  if (!allowed && throttle.empty()) {
    return absl::PermissionDeniedError(
        absl::StrCat(method, " is not allowed for \"", *who,
                     "\" (needs role controller on some throttle)"));
  }
  if (!allowed) {
    return absl::PermissionDeniedError(absl::StrCat(
        method, " on throttle \"", throttle, "\" is not allowed for \"", *who,
        "\" (needs role ",
        RoleName(static_cast<Role>(std::max(0, RequiredRole(method)))),
        " on that throttle)"));
  }
  return absl::OkStatus();
}

bool Authorizer::MayList(absl::string_view identity,
                         absl::string_view throttle) const {
  std::shared_ptr<const Policy> policy;
  {
    absl::MutexLock lock(&mu_);
    policy = policy_;
  }
  return policy == nullptr ||
         policy->Allows(identity, "ListThrottles", throttle);
}

std::string PeerHost(absl::string_view peer) {
  // ipv4:1.2.3.4:5678, ipv6:[::1]:5678, unix:/path
  if (absl::StartsWith(peer, "unix:")) return std::string(peer);
  const size_t colon = peer.rfind(':');
  if (colon == absl::string_view::npos || colon < peer.find(':') + 1) {
    return std::string(peer);
  }
  return std::string(peer.substr(0, colon));
}

}  // namespace throttle::server
