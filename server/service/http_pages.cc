#include "server/service/http_pages.h"

#include <cstdint>
#include <vector>

#include "CivetServer.h"
#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "civetweb.h"

namespace throttle::server {
namespace {

struct Registered {
  uint64_t id;
  int port;
  PageHandler handler;
};

// Every registration, newest last. A request holds the reader lock while
// its handler runs, so that a registration is never destroyed under it.
class Registry {
 public:
  uint64_t Add(int port, PageHandler handler) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::WriterMutexLock lock(&mu_);
    pages_.push_back({next_id_, port, std::move(handler)});
    return next_id_++;
  }
  void Remove(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::WriterMutexLock lock(&mu_);
    for (auto it = pages_.begin(); it != pages_.end(); ++it) {
      if (it->id == id) {
        pages_.erase(it);
        return;
      }
    }
  }
  // The newest handler of `port` that serves `path`.
  bool Serve(int port, absl::string_view path, HttpReply* reply)
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::ReaderMutexLock lock(&mu_);
    for (auto it = pages_.rbegin(); it != pages_.rend(); ++it) {
      if (it->port == port) return it->handler(path, reply);
    }
    return false;
  }

 private:
  absl::Mutex mu_;
  std::vector<Registered> pages_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

Registry& Pages() {
  static Registry registry;
  return registry;
}

// civetweb's begin_request: 0 leaves the request to the Exposer.
int BeginRequest(mg_connection* connection) {
  const mg_request_info* request = mg_get_request_info(connection);
  if (request == nullptr || request->local_uri == nullptr ||
      request->request_method == nullptr ||
      absl::string_view(request->request_method) != "GET") {
    return 0;
  }
  HttpReply reply;
  if (!Pages().Serve(request->server_port, request->local_uri, &reply)) {
    return 0;
  }
  const std::string head =
      absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: ", reply.content_type,
                   "\r\nContent-Length: ", reply.body.size(),
                   "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n");
  mg_write(connection, head.data(), head.size());
  mg_write(connection, reply.body.data(), reply.body.size());
  return 200;
}

}  // namespace

const CivetCallbacks* PageCallbacks() {
  static const CivetCallbacks callbacks = [] {
    CivetCallbacks c;
    c.begin_request = &BeginRequest;
    return c;
  }();
  return &callbacks;
}

PageRegistration::~PageRegistration() { Pages().Remove(id_); }

std::unique_ptr<PageRegistration> ServePages(int port, PageHandler handler) {
  return std::unique_ptr<PageRegistration>(
      new PageRegistration(Pages().Add(port, std::move(handler))));
}

}  // namespace throttle::server
