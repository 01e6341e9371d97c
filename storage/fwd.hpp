#pragma once
namespace kiln::storage {
class event_log;
class rocksdb_event_log;
class subscription;
struct append_request;
struct append_receipt;
struct snapshot;
} // namespace kiln::storage
