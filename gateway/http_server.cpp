#include "gateway/http_server.hpp"

#include <utility>  // before Asio under C++20 (stack-notes.md)

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <thread>

namespace kiln::gateway {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

std::string_view http_request::header(std::string_view name) const {
  for (auto& [k, v] : headers)
    if (k == name)
      return v;
  return {};
}

namespace {

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out;
}

} // namespace

http_response json_error(int status, std::string_view code, std::string_view message) {
  return {status, "application/json",
          "{\"error\":\"" + json_escape(code) + "\",\"message\":\"" + json_escape(message) + "\"}\n",
          {}};
}

// What the server needs of a live connection when it stops.
struct connection {
  virtual ~connection() = default;
  virtual void close_if_idle() = 0;
};

struct http_server::impl {
  http_server_options opts;
  std::mutex connections_mu;
  std::vector<std::weak_ptr<connection>> connections;
  request_handler handler;
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  std::atomic<bool> stopped{false};

  void accept();
};

namespace {

class session final : public connection, public std::enable_shared_from_this<session> {
 public:
  // Waiting for a request that has not begun: safe to close on stop.
  void close_if_idle() override {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->idle_ && self->buffer_.size() == 0)
        self->close();
    });
  }

  session(tcp::socket socket, http_server::impl& srv)
    : stream_(std::move(socket)), srv_(srv) {}

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(srv_.opts.max_header_bytes));
    parser_->body_limit(srv_.opts.max_body_bytes);
    stream_.expires_after(srv_.opts.request_timeout);
    idle_ = true;
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(beast::error_code ec) {
    idle_ = false;
    if (ec == http::error::end_of_stream || ec == beast::error::timeout
        || ec == net::error::operation_aborted || ec == net::error::connection_reset)
      return close();
    if (ec == http::error::body_limit)
      return reply_and_close(json_error(413, "too_large", "the request body exceeds "
                                            + std::to_string(srv_.opts.max_body_bytes) + " bytes"));
    if (ec == http::error::header_limit)
      return reply_and_close(json_error(431, "headers_too_large", "the request headers are too large"));
    if (ec)
      return reply_and_close(json_error(400, "malformed", "malformed HTTP request: " + ec.message()));

    auto msg = parser_->release();
    keep_alive_ = msg.keep_alive();
    http_request req;
    req.method = std::string{msg.method_string()};
    req.target = std::string{msg.target()};
    for (auto& f : msg) {
      std::string name{f.name_string()};
      for (auto& c : name)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers.emplace_back(std::move(name), std::string{f.value()});
    }
    req.body = std::move(msg.body());
    version_ = msg.version();
    stream_.expires_never();  // the handler may take its time (a bus request)
    auto self = shared_from_this();
    srv_.handler(std::move(req), [self](http_response r) {
      net::post(self->stream_.get_executor(),
                [self, r = std::move(r)]() mutable { self->write(std::move(r)); });
    });
  }

  void reply_and_close(http_response r) {
    keep_alive_ = false;
    write(std::move(r));
  }

  void write(http_response r) {
    res_ = {};
    res_.version(version_);
    res_.result(static_cast<unsigned>(r.status));
    res_.set(http::field::server, "kiln");
    res_.set(http::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers)
      res_.set(k, v);
    res_.body() = std::move(r.body);
    res_.keep_alive(keep_alive_ && !srv_.stopped);
    res_.prepare_payload();
    stream_.expires_after(srv_.opts.request_timeout);
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec || !self->res_.keep_alive())
        return self->close();
      self->read();
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  http_server::impl& srv_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool idle_ = false;
};

} // namespace

void http_server::impl::accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec != net::error::operation_aborted)
        spdlog::warn("http accept=failed error=\"{}\"", ec.message());
    } else {
      auto s = std::make_shared<session>(std::move(socket), *this);
      {
        std::lock_guard lock{connections_mu};
        std::erase_if(connections, [](auto& w) { return w.expired(); });
        connections.push_back(s);
      }
      s->start();
    }
    if (!stopped)
      accept();
  });
}

result<std::unique_ptr<http_server>> http_server::start(const http_server_options& opts,
                                                        request_handler handler) {
  auto p = std::make_unique<impl>();
  p->opts = opts;
  p->handler = std::move(handler);
  beast::error_code ec;
  auto addr = net::ip::make_address(opts.host, ec);
  if (ec)
    return error{"invalid_argument", "bad listen address '" + opts.host + "': " + ec.message()};
  tcp::endpoint ep{addr, opts.port};
  p->acceptor.open(ep.protocol(), ec);
  if (!ec)
    p->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec)
    p->acceptor.bind(ep, ec);
  if (!ec)
    p->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return error{"io", "cannot listen on " + opts.host + ":" + std::to_string(opts.port) + ": "
                         + ec.message()};
  p->accept();
  for (std::size_t i = 0; i < std::max<std::size_t>(1, opts.threads); ++i)
    p->threads.emplace_back([raw = p.get()] { raw->ioc.run(); });
  return std::unique_ptr<http_server>{new http_server(std::move(p))};
}

http_server::http_server(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

http_server::~http_server() { stop(); }

std::uint16_t http_server::port() const { return impl_->acceptor.local_endpoint().port(); }

void http_server::stop() {
  if (impl_->stopped.exchange(true))
    return;
  net::post(impl_->ioc, [this] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
  });
  {
    std::lock_guard lock{impl_->connections_mu};
    for (auto& w : impl_->connections)
      if (auto c = w.lock())
        c->close_if_idle();
  }
  // Sessions end after their current response (keep-alive is refused once
  // stopped), so run() returns when the last one is done; idle keep-alive
  // connections are closed at once.
  for (auto& t : impl_->threads)
    t.join();
  impl_->threads.clear();
}

} // namespace kiln::gateway
