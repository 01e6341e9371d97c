#include "cli/bench_support.hpp"

#include <algorithm>
#include <csignal>
#include <fstream>
#include <regex>
#include <stdexcept>

namespace kiln::cli {

using namespace std::chrono_literals;

void check(bool ok, const std::string& what) {
  if (!ok)
    throw std::runtime_error(what);
}

nlohmann::json expect(const result<client::http_response>& r, int status, const std::string& step) {
  check(r.has_value(), step + ": " + (r ? "" : r.error().message));
  if (r->status != status)
    throw std::runtime_error(step + ": HTTP " + std::to_string(r->status) + " " + r->body);
  return nlohmann::json::parse(r->body, nullptr, false);
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

double binned_percentile(std::vector<double>& v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  auto x = percentile(v, p);
  auto below = std::lower_bound(v.begin(), v.end(), x) - v.begin();
  auto equal = std::upper_bound(v.begin(), v.end(), x) - v.begin() - below;
  auto into = (p * static_cast<double>(v.size()) - static_cast<double>(below)) / static_cast<double>(equal);
  return x - 0.5 + std::clamp(into, 0.0, 1.0);
}

kiln_server::kiln_server(const std::filesystem::path& dir, std::vector<std::string> extra) {
  std::filesystem::create_directories(dir);
  std::vector<std::string> argv{"/proc/self/exe", "up", "--data", (dir / "data").string(),
                                "--listen", "127.0.0.1:0"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  proc = std::make_unique<subprocess>(argv, dir / "kiln.log");
  auto line = proc->wait_for_line("listening on http://", 60s);
  check(line.has_value(), "kiln up did not start; see " + (dir / "kiln.log").string());
  std::smatch m;
  check(std::regex_search(*line, m, std::regex{R"((http://[0-9.]+:\d+))"}), *line);
  base = m[1];
  std::ifstream in{dir / "data" / "admin.token"};
  std::getline(in, admin);
}

kiln_server::~kiln_server() {
  proc->signal(SIGTERM);
  proc->wait();
}

} // namespace kiln::cli
