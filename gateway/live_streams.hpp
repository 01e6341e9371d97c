#pragma once
// The gateway's long-lived responses: a run's console followed as it is
// written, and the event feed (SSE). Both read history from the core and
// are woken by the live hub, so they never miss or repeat a byte or an
// event across the switch from history to live.
#include "gateway/core_client.hpp"
#include "gateway/http_server.hpp"
#include "gateway/live_hub.hpp"

#include <memory>
#include <string>

namespace kiln::gateway {

class live_stream {
 public:
  virtual ~live_stream() = default;
  virtual void start() = 0;
  // Ends the stream with a final event telling the client to reconnect.
  virtual void drain() = 0;
  virtual bool ended() const = 0;
};

struct stream_limits {
  std::size_t buffer_bytes;                 // a client this far behind is cut off
  std::chrono::milliseconds heartbeat;
  // A follow that heard nothing this long reads again.
  std::chrono::milliseconds recheck{std::chrono::seconds{5}};
};

struct console_follow_request {
  std::string project;
  std::uint32_t build = 0;
  std::string run;
  std::uint64_t offset = 0;
  bool sse = false;
  bool follow = true;  // wait for more until the run ends
  caller who;
};

// The first read decides: an error (no such run…) is a plain JSON error
// response; otherwise `head` starts the stream.
std::shared_ptr<live_stream> make_console_follower(live_hub& hub, core_client& core,
                                                   responder respond, http_response head,
                                                   console_follow_request req, stream_limits limits);

struct event_feed_request {
  std::uint64_t after = 0;
  std::string filter;  // subject pattern over "<project>.<build>.<run>.<Type>"
  caller who;
};

std::shared_ptr<live_stream> make_event_feed(live_hub& hub, core_client& core, responder respond,
                                             http_response head, event_feed_request req,
                                             stream_limits limits);

} // namespace kiln::gateway
