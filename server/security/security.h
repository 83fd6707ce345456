// Transport security and identity of the server: TLS or mTLS credentials
// reloaded from their files, bearer tokens, and the policy of who may call
// what (policy.h, tokens.h). docs/SECURITY.md says how to use them.
//
// Part of the security layer: gRPC and OpenSSL, no service code.
#ifndef THROTTLE_SERVER_SECURITY_SECURITY_H_
#define THROTTLE_SERVER_SECURITY_SECURITY_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_context.h"
#include "server/security/policy.h"
#include "server/security/tokens.h"

namespace throttle::server {

struct SecurityOptions {
  // PEM files. tls_cert and tls_key together turn on TLS; tls_client_ca
  // (with them) requires and verifies client certificates (mTLS).
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  std::string policy_file;  // empty: every caller may call everything
  std::string token_file;   // empty: bearer tokens are not accepted
  // How often changed files are read again (certificates, policy, tokens).
  absl::Duration reload_interval = absl::Seconds(1);
};

// Plaintext when no certificate is given; else TLS whose certificate, key
// and client CA are read again from their files when they change (a
// rotated certificate is served within reload_interval). INVALID_ARGUMENT
// naming the flag for a missing or unreadable file, or a key without a
// certificate.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const SecurityOptions& options);

// Who a call is and what it may do. Thread-safe.
class Authorizer {
 public:
  // Loads the policy and token files (INVALID_ARGUMENT naming the file and
  // line) and watches them: a changed file is read again; a bad one is
  // logged once and the old one kept.
  static absl::StatusOr<std::unique_ptr<Authorizer>> Start(
      const SecurityOptions& options);
  ~Authorizer();
  Authorizer(const Authorizer&) = delete;
  Authorizer& operator=(const Authorizer&) = delete;

  // The caller's identity: "token:NAME" for a listed bearer token, else
  // the SPIFFE URI of its verified certificate, else its subject; empty
  // when it proves none. UNAUTHENTICATED for a token that is not listed,
  // or sent over a plaintext connection.
  absl::StatusOr<std::string> Identify(
      const grpc::ServerContextBase& context) const ABSL_LOCKS_EXCLUDED(mu_);

  // Whether the caller may call `method` on `throttle` (empty for
  // ListThrottles): OK, UNAUTHENTICATED (a policy is set and the call
  // proves no identity, or a bad token), or PERMISSION_DENIED naming the
  // method, the throttle and the identity. Sets *identity (may be null).
  absl::Status Check(const grpc::ServerContextBase& context,
                     absl::string_view method, absl::string_view throttle,
                     std::string* identity) const ABSL_LOCKS_EXCLUDED(mu_);

  // For ListThrottles: whether `identity` may see `throttle`.
  bool MayList(absl::string_view identity, absl::string_view throttle) const
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  explicit Authorizer(const SecurityOptions& options) : options_(options) {}
  void Watch() ABSL_LOCKS_EXCLUDED(mu_);
  // Reads the files that changed since they were last read.
  absl::Status Reload(bool first) ABSL_LOCKS_EXCLUDED(mu_);

  const SecurityOptions options_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const Policy> policy_ ABSL_GUARDED_BY(mu_);  // null: none
  std::shared_ptr<const TokenFile> tokens_ ABSL_GUARDED_BY(mu_);
  std::string policy_stamp_ ABSL_GUARDED_BY(mu_);  // mtime and size read
  std::string tokens_stamp_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watcher_;
};

// The host part of a gRPC peer string ("ipv4:10.0.0.7:53412" ->
// "ipv4:10.0.0.7"): what limits count per client when it proves no
// identity.
std::string PeerHost(absl::string_view peer);

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SECURITY_SECURITY_H_
