// A socket address as every setting writes it (--listen, --app): unix:PATH or
// HOST:PORT. One parser, so the listener, the app runner and serve --test
// agree on what an address is and say the same thing when it is not one.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sessiond {

struct Address {
  bool is_unix = false;
  std::string path;  // unix:PATH: the socket's path (1 to 107 bytes)
  // HOST:PORT: HOST without [brackets] (a name or an address, v4 or v6;
  // ":PORT" means 127.0.0.1, since FastCGI has no authentication), PORT a
  // number from 1 to 65535.
  std::string host, port;
};

// `text` as an Address, or nullopt with `why` (no leading "--option: ").
// Resolves nothing: a name is looked up when binding or connecting.
std::optional<Address> ParseAddress(std::string_view text, std::string& why);

}  // namespace sessiond
