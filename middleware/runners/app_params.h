// The FCGI_PARAMS stream sessiond sends a persistent application (php-fpm or
// any FastCGI responder): the web server's cleaned variables plus the session,
// as AppendSession gives it to pages, in records that every application reads.
//
// php-fpm reads a name-value pair only from within one record (at most
// fcgi::kMaxContent bytes) and resets the connection when one spans two, so
// every pair sent here fits one record, and each record holds whole pairs:
//  - HTTP_SESSION goes as it is when its pair fits one record. When it does
//    not, it is left out and its text (the same "key=value&..." bytes) goes
//    as SESSION_CHUNKS=N and SESSION_CHUNK_1 ... SESSION_CHUNK_N, pieces of
//    at most kSessionChunkBytes bytes each, cut anywhere (inside an escape
//    too): the application joins them in order to get HTTP_SESSION's text.
//    The names begin with SESSION_, which sessiond drops from what the web
//    server sends, so a client can forge none of them. SESSION_TYPES (the
//    keys of the JSON items) goes the same way when it does not fit, as
//    SESSION_TYPES_CHUNKS and SESSION_TYPES_CHUNK_1 ... (a session of a
//    thousand long keys).
//  - Any other pair that does not fit one record (a SESSION_VAR_<key> of a
//    value near the 64 KiB value limit; a web server variable that large) is
//    left out: the value stays in HTTP_SESSION or its chunks.
// So every session the store accepts reaches the application, whatever its
// size, and its visitor can always log out.
//
// Thread-safety: a plain function on the caller's data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "store/session.h"

namespace sessiond {

// The largest piece of the session's text in one SESSION_CHUNK_<i>.
inline constexpr std::size_t kSessionChunkBytes = 60000;

// Appends to `out` the FCGI_PARAMS records of request `request_id`: `env`
// ("NAME=value", as CleanEnvironment leaves them), then `added` (more
// "NAME=value" pairs of sessiond's own), then the session (null: a visitor
// without one; none at all when `session_off`: an off route, see
// AppendSession), ending with the empty record. Returns how many variables
// were left out for not fitting one record (HTTP_SESSION, sent as chunks, is
// not counted, nor SESSION_TYPES). `env` is read, not copied.
std::size_t AppendAppParams(std::string& out, std::uint16_t request_id, const std::vector<std::string>& env,
                            const Session* session, std::vector<std::string> added = {}, bool session_off = false);

}  // namespace sessiond
