#pragma once
// The git_poller triggers' poller, beside a core: every trigger's URLs
// are asked for their refs (`git ls-remote`) every `poll-interval`
// seconds (with up to 10 % jitter), and what was seen goes to the
// project as record_git_refs, which decides the builds. A ref whose new
// head commit says [skip ci] or [ci skip] (read from a shallow fetch into
// a cache repository) is recorded without a build. Since the project's
// decision rests on what is recorded, several cores may poll the same
// URLs: a new sha makes one build.
#include <chrono>
#include <filesystem>
#include <memory>

namespace kiln::core {

class core;

struct git_poller_options {
  std::filesystem::path cache;  // shallow fetches for commit messages
  std::chrono::milliseconds tick{1000};
  std::chrono::seconds git_timeout{60};
};

class git_poller {
 public:
  // Starts polling on its own thread; `c` must outlive it.
  git_poller(core& c, git_poller_options options);
  ~git_poller();  // stops, waiting for a git command under way to end

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace kiln::core
