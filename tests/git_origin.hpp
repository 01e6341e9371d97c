#pragma once
// A bare repository on disk (file://) with a working clone that commits and
// pushes to it: what git triggers poll and runs clone in the tests.
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace kiln::test {

// A bare repository with a working clone that commits and pushes to it.
struct git_origin {
  temp_dir dir{"kiln-git"};
  std::filesystem::path bare = dir / "origin.git";
  std::filesystem::path work = dir / "work";

  git_origin() {
    git({"init", "-q", "--bare", "-b", "main", bare.string()});
    git({"init", "-q", "-b", "main", work.string()});
    git({"-C", work.string(), "remote", "add", "origin", bare.string()});
  }
  static std::string git(std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/git", "-c", "user.name=t", "-c", "user.email=t@t"});
    auto [code, out] = run(args);
    INFO(out);
    REQUIRE(code == 0);
    return out;
  }
  // Commits a change with `message` on `branch` and pushes it; its sha.
  std::string push(const std::string& message, const std::string& branch = "main") {
    std::ofstream{work / "file.txt", std::ios::app} << message << "\n";
    git({"-C", work.string(), "add", "file.txt"});
    git({"-C", work.string(), "commit", "-q", "-m", message});
    git({"-C", work.string(), "push", "-q", "origin", "HEAD:refs/heads/" + branch});
    auto sha = git({"-C", work.string(), "rev-parse", "HEAD"});
    return sha.substr(0, 40);
  }
};

} // namespace kiln::test
