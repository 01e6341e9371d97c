#include "gateway/badge.hpp"

#include <cctype>
#include <string>

namespace kiln::gateway {

namespace {

struct look {
  std::string_view text;
  std::string_view colour;
};

look look_of(std::string_view status) {
  if (status == "PASSED")
    return {"passing", "#2f7d32"};
  if (status == "FAILED")
    return {"failing", "#c62828"};
  if (status == "TIMEOUT")
    return {"timed out", "#c62828"};
  if (status == "RUNNING" || status == "QUEUED")
    return {"running", "#1f6fb2"};
  if (status == "CANCELLED")
    return {"cancelled", "#6e6e6e"};
  if (status.empty())
    return {"no builds", "#6e6e6e"};
  return {"unknown", "#6e6e6e"};
}

// Verdana 11px is ~6-7 px a character; wide letters get a little more.
int text_width(std::string_view s) {
  int w = 0;
  for (char c : s)
    w += std::isupper(static_cast<unsigned char>(c)) || c == 'm' || c == 'w' ? 9 : 7;
  return w;
}

std::string escape(std::string_view s) {
  std::string out;
  for (char c : s)
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  return out;
}

} // namespace

std::string status_badge(std::string_view label, std::string_view status) {
  auto [text, colour] = look_of(status);
  auto n = [](int v) { return std::to_string(v); };
  auto label_w = text_width(label) + 12;
  auto text_w = text_width(text) + 12;
  auto total = n(label_w + text_w);
  auto l = escape(label);
  std::string t{text};
  auto shadowed = [](const std::string& x, const std::string& s) {
    return "<text x=\"" + x + "\" y=\"15\" fill=\"#010101\" fill-opacity=\".3\">" + s
           + "</text><text x=\"" + x + "\" y=\"14\">" + s + "</text>";
  };
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + total
         + "\" height=\"20\" role=\"img\" aria-label=\"" + l + ": " + t + "\"><title>" + l + ": "
         + t + "</title>"
         + "<linearGradient id=\"s\" x2=\"0\" y2=\"100%\"><stop offset=\"0\" stop-color=\"#bbb\" "
           "stop-opacity=\".1\"/><stop offset=\"1\" stop-opacity=\".1\"/></linearGradient>"
         + "<clipPath id=\"r\"><rect width=\"" + total + "\" height=\"20\" rx=\"3\" fill=\"#fff\"/></clipPath>"
         + "<g clip-path=\"url(#r)\"><rect width=\"" + n(label_w) + "\" height=\"20\" fill=\"#555\"/>"
         + "<rect x=\"" + n(label_w) + "\" width=\"" + n(text_w) + "\" height=\"20\" fill=\""
         + std::string{colour} + "\"/><rect width=\"" + total + "\" height=\"20\" fill=\"url(#s)\"/></g>"
         + "<g fill=\"#fff\" text-anchor=\"middle\" "
           "font-family=\"Verdana,Geneva,DejaVu Sans,sans-serif\" font-size=\"11\">"
         + shadowed(n(label_w / 2), l) + shadowed(n(label_w + text_w / 2), t) + "</g></svg>";
}

} // namespace kiln::gateway
