// Session ids: how they are made, recognised and digested.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sessiond {

// Length of an id's text: 256 random bits in unpadded base64url.
inline constexpr std::size_t kIdLength = 43;

using IdDigest = std::array<std::uint8_t, 32>;

// A new id: 32 bytes from getrandom(2), as 43 URL-safe characters.
// Throws std::system_error if the kernel cannot supply randomness.
std::string NewSessionId();

// True when `text` has the exact shape NewSessionId() produces. Says nothing
// about whether the id was ever issued.
bool IsWellFormedId(std::string_view text);

// SHA3-256 of the id's text: what the store keeps instead of the id, so a copy
// of the database hands out no live session. Same as sha3(id, 256) in the
// sqlite3 shell.
IdDigest DigestOf(std::string_view id);

// A regenerated session's new id as the store keeps it for the rotation grace
// (a request still carrying the old id must be sent the new one): its 256
// bits XOR SHA3-256("sessiond-grace" || old id). Only a holder of the old id
// can open it, so a copy of the database still hands out no live id.
using SealedId = std::array<std::uint8_t, 32>;

// `new_id` sealed for the holder of `old_id`; both must be well formed.
SealedId SealId(std::string_view new_id, std::string_view old_id);
// The id SealId sealed, given the same `old_id`; with another old id, some
// other well-formed id (so check it against the digest the store holds).
std::string UnsealId(const SealedId& sealed, std::string_view old_id);

// The digest of `id` as a session of `site` (SiteScope, store.h): for the
// default site ("") DigestOf(id), so stores made before sites keep their
// sessions; for another, SHA3-256 of "site:id", sha3('shop:' || id, 256) in
// the sqlite3 shell. The digest names the site, so no query can find one
// site's session under another site's id, whatever it filters on; and none
// collides with a default site's (a site's text has a ':', no id has one).
IdDigest DigestOf(std::string_view id, std::string_view site);

}  // namespace sessiond
