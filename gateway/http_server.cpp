#include "gateway/http_server.hpp"

#include <utility>  // before Asio under C++20 (stack-notes.md)

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <spdlog/spdlog.h>

#include <atomic>
#include <deque>
#include <limits>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

namespace kiln::gateway {



namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// A Beast body whose bytes go to a body_sink as they are parsed.
struct sink_body {
  using value_type = std::shared_ptr<body_sink>;
  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(http::header<isRequest, Fields>&, value_type& sink) : sink_(sink) {}
    void init(const boost::optional<std::uint64_t>&, beast::error_code& ec) { ec = {}; }
    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, beast::error_code& ec) {
      std::size_t n = 0;
      for (auto it = net::buffer_sequence_begin(buffers); it != net::buffer_sequence_end(buffers);
           ++it) {
        net::const_buffer b = *it;
        sink_->write({static_cast<const char*>(b.data()), b.size()});
        n += b.size();
      }
      ec = {};
      return n;
    }
    void finish(beast::error_code& ec) { ec = {}; }

   private:
    value_type& sink_;
  };
};

} // namespace
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
          {}, {}};
}

// What the server needs of a live connection when it stops.
struct connection {
  virtual ~connection() = default;
  virtual void close_if_idle() = 0;
  virtual void force_close() = 0;
};

struct http_server::impl {
  http_server_options opts;
  std::mutex connections_mu;
  std::vector<std::weak_ptr<connection>> connections;
  request_handler handler;
  body_planner planner;
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  std::atomic<bool> stopped{false};

  void accept();
  std::size_t live() {
    std::lock_guard lock{connections_mu};
    std::erase_if(connections, [](auto& w) { return w.expired(); });
    return connections.size();
  }
};

namespace {

class session;

// The body of a streamed response; the session does the writing.
class chunk_stream final : public body_stream {
 public:
  explicit chunk_stream(std::weak_ptr<session> s) : session_(std::move(s)) {}
  bool write(std::string bytes) override;
  std::size_t pending() const override { return pending_; }
  void wait_below(std::size_t bytes) override {
    std::unique_lock lock{mu_};
    drained_.wait(lock, [&] { return pending_ <= bytes || closed_; });
  }
  void finish() override;
  bool closed() const override { return closed_; }
  void on_close(std::function<void()> f) override {
    std::lock_guard lock{mu_};
    if (!closed_)
      on_close_ = std::move(f);
  }

  // From the session.
  void taken(std::size_t n) {
    {
      std::lock_guard lock{mu_};
      pending_ -= n;
    }
    drained_.notify_all();
  }
  void mark_closed() {
    std::function<void()> f;
    {
      std::lock_guard lock{mu_};
      if (closed_.exchange(true))
        return;
      f = std::move(on_close_);
    }
    drained_.notify_all();
    if (f)
      f();
  }

 private:
  std::weak_ptr<session> session_;
  std::atomic<std::size_t> pending_{0};
  std::atomic<bool> closed_{false};
  std::mutex mu_;
  std::condition_variable drained_;
  std::function<void()> on_close_;
};

class session final : public connection, public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket socket, http_server::impl& srv, bool reject)
    : stream_(std::move(socket)), srv_(srv), reject_(reject) {}

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if (self->reject_) {
        self->keep_alive_ = false;
        return self->write(json_error(503, "busy", "too many open connections; retry later"));
      }
      self->read_header();
    });
  }

  // Waiting for a request that has not begun: safe to close on stop.
  void close_if_idle() override {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->idle_ && self->buffer_.size() == 0)
        self->close();
    });
  }
  void force_close() override {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->close(); });
  }

  auto executor() { return stream_.get_executor(); }

  // ---- streamed responses (on the strand) ----
  void queue_chunk(std::string bytes) {
    if (closed_ || finishing_)
      return;
    char size[24];
    std::snprintf(size, sizeof size, "%zx\r\n", bytes.size());
    std::string framed;
    framed.reserve(bytes.size() + 32);
    framed += size;
    framed += bytes;
    framed += "\r\n";
    outq_.push_back({std::move(framed), bytes.size()});
    pump();
  }
  void finish_stream() {
    if (closed_ || finishing_)
      return;
    finishing_ = true;
    outq_.push_back({"0\r\n\r\n", 0});
    pump();
  }

  struct sink_impl;

 private:
  void read_header() {
    header_parser_.emplace();
    header_parser_->header_limit(static_cast<std::uint32_t>(srv_.opts.max_header_bytes));
    header_parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    stream_.expires_after(srv_.opts.request_timeout);
    idle_ = true;
    http::async_read_header(stream_, buffer_, *header_parser_,
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              self->on_header(ec);
                            });
  }

  bool read_failed(beast::error_code ec) {
    if (!ec)
      return false;
    if (ec == http::error::end_of_stream || ec == beast::error::timeout
        || ec == net::error::operation_aborted || ec == net::error::connection_reset
        || ec == net::error::eof) {
      close();
    } else if (ec == http::error::body_limit) {
      reply_and_close(json_error(413, "too_large", "the request body exceeds "
                                                     + std::to_string(limit_) + " bytes"));
    } else if (ec == http::error::header_limit) {
      reply_and_close(json_error(431, "headers_too_large", "the request headers are too large"));
    } else {
      reply_and_close(json_error(400, "malformed", "malformed HTTP request: " + ec.message()));
    }
    return true;
  }

  void on_header(beast::error_code ec) {
    idle_ = false;
    if (read_failed(ec))
      return;
    auto& h = header_parser_->get();
    req_ = {};
    req_.method = std::string{h.method_string()};
    req_.target = std::string{h.target()};
    for (auto& f : h) {
      std::string name{f.name_string()};
      for (auto& c : name)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req_.headers.emplace_back(std::move(name), std::string{f.value()});
    }
    version_ = h.version();
    keep_alive_ = h.keep_alive();
    body_plan plan;
    if (srv_.planner)
      plan = srv_.planner(req_.method, req_.target);
    limit_ = plan.limit;
    if (auto len = header_parser_->content_length(); len && *len > plan.limit)
      return reply_and_close(json_error(413, "too_large", "the request body exceeds "
                                                            + std::to_string(plan.limit) + " bytes"));
    if (header_parser_->is_done())
      return dispatch();
    // curl and others wait (a second) for this before a large body.
    if (beast::iequals(h[http::field::expect], "100-continue")) {
      static const std::string go_on = "HTTP/1.1 100 Continue\r\n\r\n";
      return net::async_write(stream_, net::buffer(go_on),
                              [self = shared_from_this(), plan](beast::error_code ec, std::size_t) {
                                if (ec)
                                  return self->close();
                                self->read_body(plan);
                              });
    }
    read_body(plan);
  }

  void read_body(const body_plan& plan) {
    if (plan.sink) {
      auto length = header_parser_->content_length();
      plan.sink->begin(length ? std::optional<std::uint64_t>{*length} : std::nullopt);
      sink_parser_.emplace(std::move(*header_parser_));
      sink_parser_->body_limit(plan.limit);
      sink_parser_->get().body() = plan.sink;
      req_.sink = plan.sink;
      buffer_.reserve(64 * 1024);
      return read_sink_some();
    }
    if (!plan.file.empty()) {
      file_parser_.emplace(std::move(*header_parser_));
      file_parser_->body_limit(plan.limit);
      beast::error_code fec;
      file_parser_->get().body().open(plan.file.c_str(), beast::file_mode::write, fec);
      if (fec)
        return reply_and_close(json_error(500, "io", "cannot store the upload: " + fec.message()));
      req_.body_file = plan.file;
      // Beast reads at most the buffer's free capacity (64 KiB at most) per
      // call: without room, an upload arrives in ~1.5 KiB reads and writes
      // (a 64 MiB artifact: 0.9 s instead of 0.1 s).
      buffer_.reserve(64 * 1024);
      http::async_read(stream_, buffer_, *file_parser_,
                       [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                         self->file_parser_->get().body().close();
                         if (ec) {
                           std::error_code ignored;
                           std::filesystem::remove(self->req_.body_file, ignored);
                         }
                         if (self->read_failed(ec))
                           return;
                         self->req_.body_size = n;
                         self->dispatch();
                       });
    } else {
      string_parser_.emplace(std::move(*header_parser_));
      string_parser_->body_limit(plan.limit);
      http::async_read(stream_, buffer_, *string_parser_,
                       [self = shared_from_this()](beast::error_code ec, std::size_t) {
                         if (self->read_failed(ec))
                           return;
                         self->req_.body = std::move(self->string_parser_->get().body());
                         self->req_.body_size = self->req_.body.size();
                         self->dispatch();
                       });
    }
  }

  // The body a piece at a time, pausing while the sink is saturated (its
  // parts are on their way out), so a fast client cannot fill memory.
  void read_sink_some() {
    http::async_read_some(stream_, buffer_, *sink_parser_,
                          [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                            self->req_.body_size += n;
                            if (ec) {
                              self->req_.sink->abandon();
                              self->read_failed(ec);
                              return;
                            }
                            if (self->sink_parser_->is_done())
                              return self->dispatch();
                            auto& sink = *self->req_.sink;
                            if (!sink.saturated())
                              return self->read_sink_some();
                            sink.when_ready([self] {
                              net::post(self->stream_.get_executor(),
                                        [self] { self->read_sink_some(); });
                            });
                          });
  }

  void dispatch();

  void reply_and_close(http_response r) {
    keep_alive_ = false;
    write(std::move(r));
  }

 public:
  void write(http_response r) {
    if (closed_)
      return;
    if (!r.file.empty()) {
      http::response<http::file_body> res{static_cast<http::status>(r.status), version_};
      beast::error_code ec;
      res.body().open(r.file.c_str(), beast::file_mode::scan, ec);
      if (ec)
        return write(json_error(404, "not_found", "no such file"));
      fill(res, r);
      res.prepare_payload();
      send(std::move(res));
      return;
    }
    http::response<http::string_body> res{static_cast<http::status>(r.status), version_};
    fill(res, r);
    res.body() = std::move(r.body);
    res.prepare_payload();
    send(std::move(res));
  }

  void start_stream(http_response head, std::shared_ptr<chunk_stream> s) {
    if (closed_)
      return s->mark_closed();
    stream_owner_ = s;
    keep_alive_ = false;
    auto res = std::make_shared<http::response<http::empty_body>>(
      static_cast<http::status>(head.status), version_);
    fill(*res, head);
    res->chunked(true);
    res->set(http::field::cache_control, "no-cache");
    res->keep_alive(false);
    auto sr = std::make_shared<http::response_serializer<http::empty_body>>(*res);
    stream_.expires_never();
    writing_ = true;
    http::async_write_header(stream_, *sr,
                             [self = shared_from_this(), res, sr](beast::error_code ec, std::size_t) {
                               self->writing_ = false;
                               if (ec)
                                 return self->close();
                               self->watch_peer();
                               self->pump();
                             });
  }

 private:
  template <class Res>
  void fill(Res& res, const http_response& r) {
    res.set(http::field::server, "kiln");
    res.set(http::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers)
      res.set(k, v);
    res.keep_alive(keep_alive_ && !srv_.stopped);
  }

  template <class Res>
  void send(Res&& res) {
    auto sp = std::make_shared<std::decay_t<Res>>(std::forward<Res>(res));
    stream_.expires_after(srv_.opts.request_timeout);
    http::async_write(stream_, *sp, [self = shared_from_this(), sp](beast::error_code ec, std::size_t) {
      if (ec || !sp->keep_alive())
        return self->close();
      self->read_header();
    });
  }

  // A streaming client sends nothing more; a read that ends tells us it left.
  void watch_peer() {
    stream_.socket().async_read_some(net::buffer(peek_),
                                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                       if (ec)
                                         return self->close();
                                       self->watch_peer();
                                     });
  }

  void pump() {
    if (writing_ || outq_.empty() || closed_)
      return;
    writing_ = true;
    auto item = std::make_shared<out_item>(std::move(outq_.front()));
    outq_.pop_front();
    net::async_write(stream_.socket(), net::buffer(item->framed),
                     [self = shared_from_this(), item](beast::error_code ec, std::size_t) {
                       self->writing_ = false;
                       if (auto s = self->stream_owner_)
                         s->taken(item->payload);
                       if (ec)
                         return self->close();
                       if (self->finishing_ && self->outq_.empty())
                         return self->close();
                       self->pump();
                     });
  }

  void close() {
    if (closed_)
      return;
    closed_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    if (auto s = std::move(stream_owner_))
      s->mark_closed();
  }

  struct out_item {
    std::string framed;
    std::size_t payload = 0;
  };

  beast::tcp_stream stream_;
  http_server::impl& srv_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> header_parser_;
  std::optional<http::request_parser<http::string_body>> string_parser_;
  std::optional<http::request_parser<sink_body>> sink_parser_;
  std::optional<http::request_parser<http::file_body>> file_parser_;
  http_request req_;
  std::uint64_t limit_ = 0;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool idle_ = false;
  bool reject_ = false;
  bool closed_ = false;
  bool writing_ = false;
  bool finishing_ = false;
  std::deque<out_item> outq_;
  std::shared_ptr<chunk_stream> stream_owner_;
  char peek_[256];
};

// Completes one request: exactly one send or stream.
struct session::sink_impl final : responder::sink {
  std::shared_ptr<session> s;
  std::atomic<bool> used{false};
  explicit sink_impl(std::shared_ptr<session> x) : s(std::move(x)) {}

  void send(http_response r) override {
    if (used.exchange(true))
      return;
    net::post(s->stream_.get_executor(), [s = s, r = std::move(r)]() mutable { s->write(std::move(r)); });
  }
  std::shared_ptr<body_stream> stream(http_response head) override {
    auto out = std::make_shared<chunk_stream>(s);
    if (used.exchange(true)) {
      out->mark_closed();
      return out;
    }
    net::post(s->stream_.get_executor(),
              [s = s, head = std::move(head), out]() mutable { s->start_stream(std::move(head), out); });
    return out;
  }
};

void session::dispatch() {
  stream_.expires_never();  // the handler may take its time (a bus request)
  srv_.handler(std::move(req_), responder{std::make_shared<sink_impl>(shared_from_this())});
}

bool chunk_stream::write(std::string bytes) {
  if (closed_)
    return false;
  auto s = session_.lock();
  if (!s)
    return false;
  pending_ += bytes.size();
  net::post(s->executor(), [s, bytes = std::move(bytes)]() mutable { s->queue_chunk(std::move(bytes)); });
  return true;
}

void chunk_stream::finish() {
  if (auto s = session_.lock())
    net::post(s->executor(), [s] { s->finish_stream(); });
}

} // namespace

void http_server::impl::accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec != net::error::operation_aborted)
        spdlog::warn("http accept=failed error=\"{}\"", ec.message());
    } else {
      auto reject = live() >= opts.max_connections;
      if (reject)
        spdlog::warn("http connection=refused reason=max_connections limit={}", opts.max_connections);
      auto s = std::make_shared<session>(std::move(socket), *this, reject);
      {
        std::lock_guard lock{connections_mu};
        connections.push_back(s);
      }
      s->start();
    }
    if (!stopped)
      accept();
  });
}

result<std::unique_ptr<http_server>> http_server::start(const http_server_options& opts,
                                                        request_handler handler,
                                                        body_planner planner) {
  auto p = std::make_unique<impl>();
  p->opts = opts;
  p->handler = std::move(handler);
  p->planner = std::move(planner);
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

std::size_t http_server::open_connections() const { return impl_->live(); }

void http_server::stop_accepting() {
  if (impl_->stopped.exchange(true))
    return;
  net::post(impl_->ioc, [this] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
  });
  // Sessions end after their current response (keep-alive is refused once
  // stopped); idle keep-alive connections are closed at once.
  std::lock_guard lock{impl_->connections_mu};
  for (auto& w : impl_->connections)
    if (auto c = w.lock())
      c->close_if_idle();
}

void http_server::stop(std::chrono::milliseconds grace) {
  stop_accepting();
  if (impl_->threads.empty())
    return;
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (impl_->live() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  if (auto left = impl_->live(); left > 0) {
    spdlog::warn("http stop=forced open_connections={}", left);
    std::lock_guard lock{impl_->connections_mu};
    for (auto& w : impl_->connections)
      if (auto c = w.lock())
        c->force_close();
  }
  for (auto& t : impl_->threads)
    t.join();
  impl_->threads.clear();
}

} // namespace kiln::gateway
