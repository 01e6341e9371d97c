#pragma once
// Where a server keeps artifacts (docs/operations.md): `--artifacts DIR`
// (default DATA/artifacts) or `--artifacts s3://BUCKET[/PREFIX]` with
// `--s3-endpoint URL`, `--s3-region R`, `--s3-addressing path|virtual`,
// `--s3-downloads redirect|proxy`, `--s3-presign-expiry S`, `--s3-part-size-mb N`
// and `--s3-parallel-parts N` (memory per upload: (N + 1) parts); the
// credentials from the AWS environment or credentials file.
#include "gateway/gateway.hpp"

#include <filesystem>
#include <set>
#include <string>

namespace kiln::cli {

class args;

inline const std::set<std::string> artifact_options{"artifacts", "s3-endpoint", "s3-region",
                                                    "s3-addressing", "s3-downloads",
                                                    "s3-presign-expiry", "s3-part-size-mb",
                                                    "s3-parallel-parts", "s3-single-put-max-mb"};

// Sets `g.artifacts` or `g.store`. Throws usage_error for a bad command
// line; an S3 store that does not answer (or refuses the credentials) is
// an error result, for the server to refuse to start with.
status_result configure_artifacts(const args& a, const std::filesystem::path& data,
                                  gateway::gateway_options& g);

} // namespace kiln::cli
