// Percent-coding of session items, in the form Apache mod_session uses for
// HTTP_SESSION and X-Replace-Session: key=value&key=value, both encoded.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "store/session.h"

namespace sessiond {

// Encodes every byte but the RFC 3986 unreserved ones (A-Z a-z 0-9 - . _ ~).
std::string PercentEncode(std::string_view bytes);

// Decodes %XX escapes and '+' (as a space, as in forms). nullopt when an
// escape is truncated or not hex.
std::optional<std::string> PercentDecode(std::string_view text);

// "key=value&key=value" -> items. Empty pairs (&&) are skipped; a pair without
// '=' or with a bad escape makes the whole text invalid (nullopt). A repeated
// key keeps its last value.
std::optional<Items> DecodeItems(std::string_view text);

// Items -> "key=value&key=value", in key order.
std::string EncodeItems(const Items& items);

// Keys -> "key&key", each encoded, in order: SESSION_TYPES's value.
std::string EncodeKeys(const JsonKeys& keys);

}  // namespace sessiond
