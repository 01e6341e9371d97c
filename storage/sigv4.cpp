#include "storage/sigv4.hpp"

#include "events/commit.hpp"
#include "events/sha256.hpp"
#include "events/utc_time.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>

namespace kiln::storage {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(std::string_view s) {
  // Leading and trailing blanks go; inner runs of blanks become one.
  std::string out;
  bool blank = false;
  for (char c : s) {
    if (c == ' ' || c == '\t') {
      blank = !out.empty();
      continue;
    }
    if (blank)
      out.push_back(' ');
    blank = false;
    out.push_back(c);
  }
  return out;
}

std::string canonical_query(header_list q) {
  for (auto& [k, v] : q) {
    k = uri_encode(k, false);
    v = uri_encode(v, false);
  }
  std::sort(q.begin(), q.end());
  std::string out;
  for (auto& [k, v] : q)
    out += (out.empty() ? "" : "&") + k + "=" + v;
  return out;
}

struct canonical {
  std::string request;
  std::string signed_headers;
};

canonical canonicalize(const sigv4_request& r, const header_list& query, const header_list& headers) {
  std::vector<std::pair<std::string, std::string>> h;
  for (auto& [k, v] : headers)
    h.emplace_back(lower(k), trim(v));
  std::sort(h.begin(), h.end());
  std::string lines, names;
  for (auto& [k, v] : h) {
    lines += k + ":" + v + "\n";
    names += (names.empty() ? "" : ";") + k;
  }
  return {r.method + "\n" + uri_encode(r.path.empty() ? "/" : r.path, true) + "\n"
            + canonical_query(query) + "\n" + lines + "\n" + names + "\n" + r.payload_sha256,
          names};
}

std::string signing_key(const s3_credentials& c, const std::string& day, const std::string& region,
                        const std::string& service) {
  auto k = hmac_sha256("AWS4" + c.secret_key, day);
  k = hmac_sha256(k, region);
  k = hmac_sha256(k, service);
  return hmac_sha256(k, "aws4_request");
}

} // namespace

std::string uri_encode(std::string_view s, bool keep_slash) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xf]);
    }
  }
  return out;
}

std::string amz_date(long long unix_s) { return utc_text(unix_s, "%Y%m%dT%H%M%SZ"); }

sigv4_signature sign(const sigv4_request& r, const s3_credentials& c, const std::string& region,
                     const std::string& date, const std::string& service) {
  sigv4_signature out;
  auto day = date.substr(0, 8);
  auto scope = day + "/" + region + "/" + service + "/aws4_request";
  header_list headers = r.headers;
  headers.emplace_back("host", r.host);
  headers.emplace_back("x-amz-content-sha256", r.payload_sha256);
  headers.emplace_back("x-amz-date", date);
  if (!c.session_token.empty())
    headers.emplace_back("x-amz-security-token", c.session_token);
  auto canon = canonicalize(r, r.query, headers);
  out.canonical_request = canon.request;
  out.string_to_sign =
    "AWS4-HMAC-SHA256\n" + date + "\n" + scope + "\n" + sha256_hex(out.canonical_request);
  out.signature = to_hex(hmac_sha256(signing_key(c, day, region, service), out.string_to_sign));
  out.headers = {{"x-amz-date", date}, {"x-amz-content-sha256", r.payload_sha256}};
  if (!c.session_token.empty())
    out.headers.emplace_back("x-amz-security-token", c.session_token);
  out.headers.emplace_back("authorization", "AWS4-HMAC-SHA256 Credential=" + c.access_key + "/"
                                              + scope + ", SignedHeaders=" + canon.signed_headers
                                              + ", Signature=" + out.signature);
  return out;
}

std::string presign(const sigv4_request& r, const s3_credentials& c, const std::string& region,
                    const std::string& date, long expires_s, const std::string& service) {
  auto day = date.substr(0, 8);
  auto scope = day + "/" + region + "/" + service + "/aws4_request";
  header_list headers = r.headers;
  headers.emplace_back("host", r.host);
  std::string names;
  {
    std::vector<std::string> n;
    for (auto& [k, v] : headers)
      n.push_back(lower(k));
    std::sort(n.begin(), n.end());
    for (auto& x : n)
      names += (names.empty() ? "" : ";") + x;
  }
  header_list query = r.query;
  query.emplace_back("X-Amz-Algorithm", "AWS4-HMAC-SHA256");
  query.emplace_back("X-Amz-Credential", c.access_key + "/" + scope);
  query.emplace_back("X-Amz-Date", date);
  query.emplace_back("X-Amz-Expires", std::to_string(expires_s));
  if (!c.session_token.empty())
    query.emplace_back("X-Amz-Security-Token", c.session_token);
  query.emplace_back("X-Amz-SignedHeaders", names);
  sigv4_request unsigned_payload = r;
  unsigned_payload.payload_sha256 = "UNSIGNED-PAYLOAD";
  auto canon = canonicalize(unsigned_payload, query, headers);
  auto to_sign = "AWS4-HMAC-SHA256\n" + date + "\n" + scope + "\n" + sha256_hex(canon.request);
  auto signature = to_hex(hmac_sha256(signing_key(c, day, region, service), to_sign));
  query.emplace_back("X-Amz-Signature", signature);
  return uri_encode(r.path.empty() ? "/" : r.path, true) + "?" + canonical_query(query);
}

} // namespace kiln::storage
