// How the commands print what a store holds: times, bytes on a terminal, and
// JSON. Keys and values come from clients (a user name typed into a form), so
// nothing here lets them move the cursor, recolour the terminal, or reorder
// the text around them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sessiond {

// ISO 8601 in UTC to the second: 2026-11-23T20:36:29Z.
std::string IsoTime(std::int64_t unix_seconds);

// True when `bytes` is valid UTF-8 (no overlong forms, surrogates or code
// points past U+10FFFF). NUL and other control characters are valid.
bool IsUtf8(std::string_view bytes);

// `bytes` in double quotes, readable and unambiguous: printable UTF-8 as it
// is; \" \\ \n \r \t; other C0 controls, DEL and bytes that are not UTF-8 as
// \xNN; C1 controls and the bidirectional formatting characters as \u{NNNN}.
std::string Quoted(std::string_view bytes);

// Quoted without the quotes: for messages, whose text may come from a file.
std::string Escaped(std::string_view bytes);

// A key as it is when it is made of [A-Za-z0-9_.:-] only, else Quoted.
std::string KeyText(std::string_view key);

// Lowercase hex of every byte.
std::string HexBytes(std::string_view bytes);

// A JSON string literal. Control characters (C0, DEL, C1) and the
// bidirectional formatting characters are escaped as \uNNNN; a byte
// that is not UTF-8 is escaped as the code point of the same number (lossy:
// use JsonBytes for data).
std::string JsonString(std::string_view text);

// A JSON member for data: "name": "<text>" when `bytes` is UTF-8, else
// "name_hex": "<hex>", so no byte is lost or made up.
std::string JsonBytes(std::string_view name, std::string_view bytes);

}  // namespace sessiond
