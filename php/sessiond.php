<?php
/*
 * sessiond's PHP bridge: $_SESSION backed by sessiond, for PHP code that
 * php-fpm runs behind `sessiond serve --app NAME=unix:PATH`.
 *
 *     require_once '/usr/share/sessiond/php/sessiond.php';
 *     $_SESSION['UserName'] = 'ann';      // stored when the request ends
 *
 * Contract (the README's "PHP with php-fpm" says the same for operators):
 *
 * - At include time $_SESSION holds the visitor's session, read from the
 *   HTTP_SESSION parameter sessiond injects, or from its numbered pieces
 *   (SESSION_CHUNKS, SESSION_CHUNK_1...) when the session is too large for
 *   one FastCGI record: a session of any size the store accepts (a client
 *   can forge none of them: sessiond discards any it sends). No
 *   session_start() is needed, and PHP's own session_start() is refused
 *   with an exception, so it can never replace $_SESSION behind the
 *   bridge's back.
 * - At the end of the request (or at sessiond_commit()) the bridge compares
 *   $_SESSION with what it loaded and sends sessiond one directive per
 *   change: X-Session-Set for a new or changed key, X-Session-Remove for a
 *   removed one. Two requests of one session that change different keys
 *   therefore both keep their change. sessiond commits them all or none
 *   before the response leaves.
 * - sessiond_regenerate() (the session_regenerate_id(true) of sessiond): new
 *   id at commit, same data, the old id dead at once. sessiond_abandon()
 *   (session_destroy() plus an expired cookie): the session is deleted.
 *   sessiond_clear(): the stored session becomes exactly what $_SESSION
 *   holds at the end, items that other requests added meanwhile included.
 * - Values: a string is stored as it is, byte for byte, so pages in other
 *   languages read it. Every other value (int, float, bool, null, arrays of
 *   those and strings) is stored as "json:" followed by its JSON, and comes
 *   back as the same value; a string that itself begins with "json:" is
 *   stored that way too, so what comes back is always what was stored.
 *   Objects, resources, NAN/INF and arrays holding non-UTF-8 strings are
 *   refused. A stored value beginning with "json:" that is not valid JSON
 *   (written by another page) reads back as the plain string.
 * - Anything that cannot be stored (an empty or over-long key, an over-long
 *   value, an object) throws \Sessiond\Error; at the end of the request that
 *   means a 500 and no change at all: never a partial commit.
 * - Headers go out before the first byte of the body: the bridge buffers
 *   output from include time and sends its headers from a shutdown function,
 *   which PHP runs before it flushes output buffers. A page that flushes
 *   early calls sessiond_commit() first. A page that ends in a fatal error
 *   or an uncaught exception sends no session change, and gets a 500.
 *
 * Limits the bridge checks itself, so a mistake is a PHP error naming the
 * key rather than sessiond's 413: define them before the include when
 * sessiond runs with other --max-key-bytes / --max-value-bytes.
 *     SESSIOND_MAX_KEY_BYTES   (default 256, sessiond's default)
 *     SESSIOND_MAX_VALUE_BYTES (default 65536, sessiond's default)
 */

namespace Sessiond {

/** Something the bridge cannot do: a request that did not come through
 *  sessiond, a value that cannot be stored, a commit after output began. */
class Error extends \RuntimeException
{
}

/** PHP's own session functions, refused: the session belongs to sessiond. */
final class RefusedSessionHandler implements \SessionHandlerInterface
{
    public function open(string $path, string $name): bool
    {
        throw new Error('session_start() is not used with sessiond.php: $_SESSION is already the '
            . 'sessiond session; see sessiond_regenerate() and sessiond_abandon() for '
            . 'session_regenerate_id() and session_destroy()');
    }
    public function close(): bool { return true; }
    public function read(string $id): string|false { return false; }
    public function write(string $id, string $data): bool { return false; }
    public function destroy(string $id): bool { return false; }
    public function gc(int $max_lifetime): int|false { return false; }
}

/** The request's session state; one per request (php-fpm runs one request
 *  per worker process at a time), reset by start(). */
final class Bridge
{
    public const JSON_PREFIX = 'json:';
    private const JSON_FLAGS = JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES
        | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION;
    private const FATAL = E_ERROR | E_PARSE | E_CORE_ERROR | E_COMPILE_ERROR
        | E_USER_ERROR | E_RECOVERABLE_ERROR;

    /** @var array<array-key, mixed> the session as loaded, decoded */
    private static array $loaded = [];
    /** @var array<array-key, mixed>|null $_SESSION as committed, once it was */
    private static ?array $committed = null;
    private static bool $regenerate = false;
    private static bool $abandon = false;
    private static bool $clear = false;
    private static bool $lastInLine = false;

    public static function start(): void
    {
        if (!isset($_SERVER['SESSION_NEW'])) {
            // Only a fastcgi_param can set a name without HTTP_, so its
            // absence means no sessiond in front: HTTP_SESSION would then be
            // a client's own "Session:" header.
            throw new Error('this request did not come through sessiond (no SESSION_NEW '
                . 'parameter): point nginx at sessiond with fastcgi_param SESSIOND_APP, '
                . 'not at php-fpm');
        }
        if (headers_sent($file, $line)) {
            throw new Error("output started at $file:$line before sessiond.php was included: "
                . 'include it first, so that the session can be sent in the headers');
        }
        // The session extension is what makes $_SESSION a superglobal
        // (Debian's PHP has it built in).
        if (!\extension_loaded('session')) {
            throw new Error('sessiond.php needs PHP\'s session extension, for $_SESSION');
        }
        if (session_status() === PHP_SESSION_ACTIVE) {
            throw new Error('PHP\'s own session is active (session.auto_start?): '
                . 'sessiond.php provides $_SESSION itself');
        }
        session_set_save_handler(new RefusedSessionHandler(), false);
        self::$loaded = self::decodeSession(self::sessionText($_SERVER));
        self::$committed = null;
        self::$regenerate = self::$abandon = self::$clear = self::$lastInLine = false;
        $_SESSION = self::$loaded;
        ob_start();
        register_shutdown_function([self::class, 'atShutdown']);
    }

    public static function regenerate(): void
    {
        self::notCommitted('sessiond_regenerate()');
        self::$regenerate = true;
    }

    public static function abandon(): void
    {
        self::notCommitted('sessiond_abandon()');
        self::$abandon = true;
        $_SESSION = [];
    }

    public static function clear(): void
    {
        self::notCommitted('sessiond_clear()');
        self::$clear = true;
        $_SESSION = [];
    }

    /** Sends the directives now. Throws Error when they cannot be sent (a
     *  value that cannot be stored, output already sent, committed before);
     *  nothing is sent then. */
    public static function commit(): void
    {
        self::notCommitted('sessiond_commit()');
        if (headers_sent($file, $line)) {
            throw new Error("output started at $file:$line before the session was committed: "
                . 'call sessiond_commit() before flushing output');
        }
        $headers = self::directives();
        foreach ($headers as $h) {
            header($h, false);
        }
        self::$committed = self::currentSession();
    }

    /** Registered at include time; runs before PHP flushes the output buffers. */
    public static function atShutdown(): void
    {
        // Run after the page's own shutdown functions too: registering again
        // from here puts this call at the end of the list PHP is working through.
        if (!self::$lastInLine) {
            self::$lastInLine = true;
            register_shutdown_function([self::class, 'atShutdown']);
            return;
        }
        $error = error_get_last();
        if ($error !== null && ($error['type'] & self::FATAL) !== 0) {
            // The page failed: keep none of its changes.
            if (!headers_sent()) {
                http_response_code(500);
            }
            return;
        }
        if (self::$committed !== null) {
            if (!\is_array($_SESSION) || $_SESSION !== self::$committed) {
                trigger_error('sessiond.php: $_SESSION changed after sessiond_commit(); '
                    . 'those changes are not stored', E_USER_WARNING);
            }
            return;
        }
        if (headers_sent($file, $line)) {
            if (self::$abandon || self::$regenerate || self::$clear || !self::unchanged()) {
                trigger_error("sessiond.php: output started at $file:$line before the session "
                    . 'was committed; its changes are not stored (call sessiond_commit() '
                    . 'before flushing output)', E_USER_WARNING);
            }
            return;
        }
        try {
            self::commit();
        } catch (Error $e) {
            // Nothing was sent to sessiond: the request fails whole, and the
            // body the page wrote (which may claim success) goes nowhere.
            while (ob_get_level() > 0) {
                ob_end_clean();
            }
            http_response_code(500);
            throw $e;
        }
    }

    /** @return list<string> the header lines sessiond takes as directives */
    private static function directives(): array
    {
        if (self::$abandon) {
            return ['X-Session-Abandon: 1'];
        }
        $session = self::currentSession();
        $out = [];
        if (self::$clear) {
            $out[] = 'X-Session-Clear: 1';
        } else {
            foreach (self::$loaded as $key => $_) {
                if (!\array_key_exists($key, $session)) {
                    $out[] = 'X-Session-Remove: ' . rawurlencode((string)$key);
                }
            }
        }
        foreach ($session as $key => $value) {
            if (!self::$clear && \array_key_exists($key, self::$loaded) && self::$loaded[$key] === $value) {
                continue;
            }
            $key = (string)$key;
            self::checkKey($key);
            $stored = self::encodeValue($key, $value);
            $max = \defined('SESSIOND_MAX_VALUE_BYTES') ? (int)\constant('SESSIOND_MAX_VALUE_BYTES') : 65536;
            if (\strlen($stored) > $max) {
                throw new Error("session value of '" . self::shown($key) . "' is " . \strlen($stored)
                    . " bytes stored, over the limit of $max (SESSIOND_MAX_VALUE_BYTES)");
            }
            $out[] = 'X-Session-Set: ' . rawurlencode($key) . '=' . rawurlencode($stored);
        }
        if (self::$regenerate) {
            $out[] = 'X-Session-Regenerate: 1';
        }
        return $out;
    }

    private static function unchanged(): bool
    {
        return \is_array($_SESSION) && $_SESSION === self::$loaded;
    }

    /** @return array<array-key, mixed> */
    private static function currentSession(): array
    {
        if (!\is_array($_SESSION)) {
            throw new Error('$_SESSION is no longer an array (' . get_debug_type($_SESSION)
                . '); use $_SESSION = [] or sessiond_clear() to empty it');
        }
        return $_SESSION;
    }

    private static function checkKey(string $key): void
    {
        $max = \defined('SESSIOND_MAX_KEY_BYTES') ? (int)\constant('SESSIOND_MAX_KEY_BYTES') : 256;
        if ($key === '') {
            throw new Error('a session key cannot be empty');
        }
        if (\strlen($key) > $max) {
            throw new Error("session key '" . self::shown($key) . "...' is " . \strlen($key)
                . " bytes, over the limit of $max (SESSIOND_MAX_KEY_BYTES)");
        }
    }

    /** The bytes stored for $value (see the file's comment). */
    public static function encodeValue(string $key, mixed $value): string
    {
        if (\is_string($value) && !str_starts_with($value, self::JSON_PREFIX)) {
            return $value;
        }
        self::checkStorable($key, $value, 0);
        try {
            return self::JSON_PREFIX . json_encode($value, self::JSON_FLAGS);
        } catch (\JsonException $e) {
            throw new Error("session value of '" . self::shown($key) . "' cannot be stored as JSON ("
                . $e->getMessage() . '); store binary data as a string of its own, or base64', 0, $e);
        }
    }

    private static function checkStorable(string $key, mixed $value, int $depth): void
    {
        if (\is_array($value)) {
            if ($depth >= 64) {
                throw new Error("session value of '" . self::shown($key) . "' is nested too deeply");
            }
            foreach ($value as $v) {
                self::checkStorable($key, $v, $depth + 1);
            }
            return;
        }
        if (\is_float($value) && !is_finite($value)) {
            throw new Error("session value of '" . self::shown($key) . "' is $value, which JSON cannot hold");
        }
        if (\is_object($value) || \is_resource($value) || get_debug_type($value) === 'resource (closed)') {
            throw new Error("session value of '" . self::shown($key) . "' is " . get_debug_type($value)
                . ': only strings, numbers, booleans, null and arrays of them can be stored '
                . '(serialize() an object into a string yourself if you must)');
        }
    }

    /** The value stored bytes stand for (see the file's comment). */
    public static function decodeValue(string $stored): mixed
    {
        if (!str_starts_with($stored, self::JSON_PREFIX)) {
            return $stored;
        }
        try {
            return json_decode(substr($stored, \strlen(self::JSON_PREFIX)), true, 512, JSON_THROW_ON_ERROR);
        } catch (\JsonException) {
            return $stored;
        }
    }

    /** The session's text as sessiond sent it: HTTP_SESSION, or, for a
     *  session too large for one FastCGI record, its pieces SESSION_CHUNK_1
     *  ... SESSION_CHUNK_N (N in SESSION_CHUNKS) joined in order. */
    public static function sessionText(array $server): string
    {
        if (!isset($server['SESSION_CHUNKS'])) {
            return (string)($server['HTTP_SESSION'] ?? '');
        }
        $n = (string)$server['SESSION_CHUNKS'];
        if (!ctype_digit($n)) {
            throw new Error("SESSION_CHUNKS is '" . self::shown($n) . "', not a number");
        }
        $chunks = [];
        for ($i = 1; $i <= (int)$n; ++$i) {
            if (!isset($server["SESSION_CHUNK_$i"])) {
                throw new Error("SESSION_CHUNKS is $n but SESSION_CHUNK_$i is missing");
            }
            $chunks[] = $server["SESSION_CHUNK_$i"];
        }
        return implode('', $chunks);
    }

    /** HTTP_SESSION ("key=value&key=value", both percent-encoded) -> decoded items. */
    public static function decodeSession(string $text): array
    {
        // Pair by pair in place, not explode(): a session of 1 MiB can be
        // 3 MiB of text, and a copy of it all would raise the peak memory.
        $items = [];
        $length = \strlen($text);
        for ($at = 0; $at < $length; $at = $end + 1) {
            $end = strpos($text, '&', $at);
            if ($end === false) {
                $end = $length;
            }
            if ($end === $at) {
                continue;
            }
            $eq = strpos($text, '=', $at);
            if ($eq === false || $eq > $end) {
                throw new Error('HTTP_SESSION is not key=value&key=value text');
            }
            $items[urldecode(substr($text, $at, $eq - $at))]
                = self::decodeValue(urldecode(substr($text, $eq + 1, $end - $eq - 1)));
        }
        return $items;
    }

    private static function notCommitted(string $what): void
    {
        if (self::$committed !== null) {
            throw new Error("$what after sessiond_commit(): the session was sent already");
        }
    }

    /** A key as an error message may show it: its first 40 bytes, printable. */
    private static function shown(string $key): string
    {
        return addcslashes(substr($key, 0, 40), "\0..\37\177..\377'\\");
    }
}

}  // namespace Sessiond

namespace {

/** Move the session to a new id when the request commits (same data; the
 *  old id stops working at once): sessiond's session_regenerate_id(true).
 *  Do it at login. */
function sessiond_regenerate(): void
{
    \Sessiond\Bridge::regenerate();
}

/** Delete the session when the request commits and expire the visitor's
 *  cookie: sessiond's session_destroy(). Empties $_SESSION; wins over any
 *  other change of the request. */
function sessiond_abandon(): void
{
    \Sessiond\Bridge::abandon();
}

/** Empty $_SESSION, and at commit replace the whole stored session with what
 *  $_SESSION then holds (items other requests added meanwhile included);
 *  without it, only the keys this request changed are written. */
function sessiond_clear(): void
{
    \Sessiond\Bridge::clear();
}

/** Send the session's changes now, as response headers: for a page that
 *  flushes output before it ends. Later changes to $_SESSION are not stored
 *  (a warning says so). Throws \Sessiond\Error when they cannot be sent. */
function sessiond_commit(): void
{
    \Sessiond\Bridge::commit();
}

\Sessiond\Bridge::start();

}
