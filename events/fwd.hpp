#pragma once
// Forward declarations for headers that only pass events/ types around.
namespace kiln {
struct error;
template <class T> class result;
struct stream_version;
struct global_seq;
struct stream_id;
struct commit;
struct commit_metadata;
struct logged_commit;
} // namespace kiln
