#include "cli/artifact_args.hpp"

#include "cli/args.hpp"
#include "gateway/s3_artifact_store.hpp"
#include "storage/s3_client.hpp"

#include <spdlog/spdlog.h>

namespace kiln::cli {

status_result configure_artifacts(const args& a, const std::filesystem::path& data,
                                  gateway::gateway_options& g) {
  auto where = a.get_or("artifacts", (data / "artifacts").string());
  if (!where.starts_with("s3://")) {
    for (auto& k : {"s3-endpoint", "s3-region", "s3-addressing", "s3-downloads", "s3-presign-expiry",
                    "s3-part-size-mb", "s3-parallel-parts", "s3-single-put-max-mb"})
      if (a.has(k))
        throw usage_error(std::string{"--"} + k + " needs --artifacts s3://BUCKET[/PREFIX]");
    g.store = gateway::make_local_artifact_store(where);
    return kiln::ok;
  }
  auto url = gateway::parse_s3_url(where);
  if (!url)
    throw usage_error(url.error().message);
  storage::s3_config s3;
  s3.bucket = url->first;
  s3.region = a.get_or("s3-region", "us-east-1");
  s3.endpoint = a.get_or("s3-endpoint", "https://s3." + s3.region + ".amazonaws.com");
  auto addressing = a.get_or("s3-addressing", "path");
  if (addressing != "path" && addressing != "virtual")
    throw usage_error("--s3-addressing is path or virtual, not '" + addressing + "'");
  s3.path_style = addressing == "path";
  s3.part_size = a.get_u64("s3-part-size-mb", 8) << 20;
  if (s3.part_size < (5u << 20) || s3.part_size > (512u << 20))
    throw usage_error("--s3-part-size-mb is 5 to 512 (S3's parts are at least 5 MiB)");
  s3.multipart_threshold = s3.part_size;
  s3.parallel_parts = static_cast<unsigned>(a.get_u64("s3-parallel-parts", 3));
  if (s3.parallel_parts < 1 || s3.parallel_parts > 64)
    throw usage_error("--s3-parallel-parts is 1 to 64");
  s3.stream_put_max = a.get_u64("s3-single-put-max-mb", 1024) << 20;
  if (s3.stream_put_max > (5ull << 30))
    throw usage_error("--s3-single-put-max-mb is at most 5120 (S3's largest single PUT)");
  gateway::s3_store_options o;
  o.prefix = url->second;
  auto downloads = a.get_or("s3-downloads", "redirect");
  if (downloads != "redirect" && downloads != "proxy")
    throw usage_error("--s3-downloads is redirect or proxy, not '" + downloads + "'");
  o.proxy_downloads = downloads == "proxy";
  o.presign_expiry_s = static_cast<long>(a.get_u64("s3-presign-expiry", 300));
  if (o.presign_expiry_s < 1 || o.presign_expiry_s > 7 * 24 * 3600)
    throw usage_error("--s3-presign-expiry is 1 to 604800 seconds");
  o.spool = data / "artifact-spool";
  auto credentials = storage::load_s3_credentials();
  if (!credentials)
    return credentials.error();
  s3.credentials = *credentials;
  auto store = gateway::make_s3_artifact_store(s3, o);
  if (!store)
    return store.error();
  spdlog::info("artifacts store=s3 bucket={} prefix=\"{}\" endpoint={} addressing={} downloads={}",
               s3.bucket, o.prefix, s3.endpoint, addressing, downloads);
  g.store = std::move(*store);
  return kiln::ok;
}

} // namespace kiln::cli
