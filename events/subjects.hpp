#pragma once
// The bus subjects that carry events and console bytes (DESIGN.md "The bus",
// docs/events.md), and the frame that puts a JSON header before raw bytes
// in one bus message.
#include "events/ids.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace kiln::subjects {

// A name as one subject token: characters a token cannot hold ('.', '*',
// '>', whitespace) become '_', and "" becomes "-". Lossy on purpose: the
// payload carries the exact names, the subject is for routing.
std::string token(std::string_view name);

// "<project>.<build>.<run>.<Type>" for an event of `stream` ('-' for a
// missing part): what /v1/events filters match, and kiln.evt.… minus the
// prefix.
std::string event_path(const stream_id& stream, std::string_view type);

// kiln.evt.<project>.<build>.<run>.<Type>
std::string event_subject(const stream_id& stream, std::string_view type);

// kiln.log.<project>.<build>.<run>: a run's live console chunks.
std::string console_subject(std::string_view project, std::uint32_t build, std::string_view run);

// kiln.es.<part>.<part>…: the subject of `stream`'s commits in the
// cluster's log, one token per '/'-separated part of its name. Lossless
// (unlike token()): bytes a token cannot hold become ~XX, and an empty part
// "~", so that two streams never share a subject (and its sequence check).
std::string log_subject(const stream_id& stream);
inline constexpr std::string_view log_subjects = "kiln.es.>";

// kiln.con.<project>.<build>.<run>, encoded likewise: a run's console
// chunks in the cluster's console stream (`run` is "project/build/run").
std::string console_copy_subject(std::string_view run);
inline constexpr std::string_view console_copy_subjects = "kiln.con.>";

// The JetStream stream that keeps every event for outside consumers
// (docs/events.md), over kiln.evt.>.
inline constexpr std::string_view events_stream = "KILN_EVENTS";

// One message: a JSON header (never holding a raw newline), '\n', bytes.
std::string frame(std::string_view header, std::string_view bytes);
std::pair<std::string_view, std::string_view> unframe(std::string_view message);

} // namespace kiln::subjects
