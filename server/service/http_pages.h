// Pages served beside the metrics on the HTTP port (--metrics_listen):
// the status page (status_page.h) at "/" and its JSON.
//
// Part of the service glue. prometheus-cpp 1.0's Exposer serves only
// collectables (text exposition) and has no way to add a handler; but it
// passes civetweb callbacks through, and civetweb's `begin_request` sees
// every request first. PageCallbacks() is that hook: an Exposer built with
// it answers the paths a handler registered for its port takes, and leaves
// every other path (/metrics) to the Exposer. See docs/DECISIONS.md.
#ifndef THROTTLE_SERVER_SERVICE_HTTP_PAGES_H_
#define THROTTLE_SERVER_SERVICE_HTTP_PAGES_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"

struct CivetCallbacks;

namespace throttle::server {

// A page's answer.
struct HttpReply {
  std::string content_type;
  std::string body;
};

// Answers a GET of `path` (without the query): true with *reply filled if
// it serves that path. Runs on the HTTP server's threads; must not block
// beyond short mutexes.
using PageHandler =
    std::function<bool(absl::string_view path, HttpReply* reply)>;

// The callbacks to build a prometheus::Exposer with so that its port also
// serves the pages registered for it. Never null; lives for the process.
const CivetCallbacks* PageCallbacks();

// Serves `handler` on the HTTP port `port` (an Exposer built with
// PageCallbacks()) until the returned registration is destroyed; the
// destructor waits for a request it is answering. A later registration for
// the same port takes precedence until it is destroyed (a standby's page,
// then the server's while it leads). Thread-safe.
class PageRegistration {
 public:
  ~PageRegistration();
  PageRegistration(const PageRegistration&) = delete;
  PageRegistration& operator=(const PageRegistration&) = delete;

 private:
  friend std::unique_ptr<PageRegistration> ServePages(int, PageHandler);
  explicit PageRegistration(uint64_t id) : id_(id) {}
  const uint64_t id_;
};
std::unique_ptr<PageRegistration> ServePages(int port, PageHandler handler);

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_HTTP_PAGES_H_
