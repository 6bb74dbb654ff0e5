<?php
/*
 * sessiond's PHP bridge: PHP's sessions backed by sessiond, for PHP code
 * that php-fpm runs behind `sessiond serve --app NAME=unix:PATH`. One line in
 * the php-fpm pool (or php.ini) and the application is unchanged:
 *
 *     php_admin_value[auto_prepend_file] = /usr/share/sessiond/php/sessiond.php
 *
 *     session_start();                    // PHP's own API, as documented
 *     $_SESSION['UserName'] = 'ann';      // stored when the request ends
 *
 * Contract (docs/php.md says the same for operators):
 *
 * - PHP's session API works with sessiond as its store: the bridge registers
 *   a save handler (session_set_save_handler) and turns PHP's own cookie and
 *   URL ids off (session.use_cookies=0, use_only_cookies=1,
 *   use_trans_sid=0); a cookie of PHP's session that an application turns
 *   on again is removed before the headers leave. So the only session
 *   cookie is sessiond's, and no session file is ever made.
 *   session_start() reads the session sessiond injected (whatever id PHP
 *   names: no id reaches another visitor's session); session_id() is
 *   sessiond's id, or a stand-in for a new visitor (sessiond makes the real
 *   one when the request commits). session_write_close() ends the session
 *   part of the request: later changes to $_SESSION are not stored, and
 *   session_start() again reads what it wrote. session_abort(),
 *   session_reset() and read_and_close as PHP documents them.
 *   session_regenerate_id() (true or false) is sessiond's regenerate: new
 *   id at commit, same data, the old id dead at once. session_destroy() is
 *   sessiond's abandon (the session deleted, the cookie expired); a
 *   session_start() after it in the same request begins a new session
 *   (under a new id, holding only what is written since).
 * - For code written for the bridge's own functions, $_SESSION also holds
 *   the session at include time, without session_start(), and changes to it
 *   are stored as long as PHP's session is never started in the request.
 *   (A page testing `isset($_SESSION)` to decide on session_start() finds it
 *   set; its session_regenerate_id() and session_destroy(), refused by PHP
 *   with a warning, still regenerate and abandon: see atWarning().) The session comes from the
 *   HTTP_SESSION parameter sessiond injects, or from its numbered pieces
 *   (SESSION_CHUNKS, SESSION_CHUNK_1...) when the session is too large for
 *   one FastCGI record: a session of any size the store accepts (a client
 *   can forge none of them: sessiond discards any it sends).
 * - At the end of the request (or at sessiond_commit()) the bridge compares
 *   the session the request leaves ($_SESSION as PHP's session last wrote
 *   it, or $_SESSION itself when PHP's session was never started) with what
 *   it loaded and sends sessiond one directive per
 *   change: X-Session-Set for a new or changed key, X-Session-Remove for a
 *   removed one. Two requests of one session that change different keys
 *   therefore both keep their change. sessiond commits them all or none
 *   before the response leaves.
 * - sessiond_regenerate() (session_regenerate_id(true) before PHP's API): new
 *   id at commit, same data, the old id dead at once. sessiond_abandon()
 *   (session_destroy() plus an expired cookie): the session is deleted.
 *   sessiond_clear(): the stored session becomes exactly what $_SESSION
 *   holds at the end, items that other requests added meanwhile included.
 * - Values: a string is stored as a string item, byte for byte, so pages in
 *   other languages read it as it is. Every other value (int, float, bool,
 *   null, arrays of those and strings) is stored as a JSON item
 *   (X-Session-Set-Json): its JSON text is the value, and its type, json,
 *   is kept beside it, so a page in sh, Python or Perl reads an int 3 as
 *   `3` and an array as its JSON (`{"apple":1}`), and the bridge reads it
 *   back as the same value (json_decode; the item's type comes in
 *   SESSION_TYPES). A JSON item another page wrote reads back as what its
 *   JSON says. Objects, resources, NAN/INF and arrays holding non-UTF-8
 *   strings are refused. (Bridges before JSON items stored "json:" and the
 *   JSON inside the value; sessiond's schema step turned those into JSON
 *   items: see docs/php.md.)
 * - The route's SESSION_MODE (set per location by the web server; sessiond
 *   passes it on as SESSION_MODE): on a `read` route session_start() and
 *   $_SESSION work as ever, and any change at the end (a key set or removed,
 *   session_regenerate_id(), session_destroy(), sessiond_clear()) throws
 *   \Sessiond\Error naming it: a 500, nothing stored. On an `off` route
 *   there is no session: $_SESSION starts empty, session_start() works,
 *   session_id() is a stand-in, and a change is refused the same way.
 *   `write` and `exclusive` as described above.
 * - sessiond_status() is the session's status as sessiond tells it
 *   (SESSION_STATUS): 'new', 'ok', 'expired', 'regenerated' or
 *   'unavailable'; null on an off route. 'unavailable': the route sets
 *   SESSION_ON_STORE_ERROR degrade and the store is out of reach, so the
 *   page runs without its session ($_SESSION starts empty, as for a new
 *   visitor). A change then cannot be kept: the bridge sends it as ever, and
 *   sessiond answers the request with 503 and Retry-After instead of the
 *   page's output, nothing stored. A page that checks sessiond_status()
 *   first can say "try again" itself.
 * - Anything that cannot be stored (an empty or over-long key, an over-long
 *   value, an object) throws \Sessiond\Error; at the end of the request that
 *   means a 500 and no change at all: never a partial commit.
 * - Headers go out before the first byte of the body: the bridge buffers
 *   output from include time and sends its headers from a shutdown function,
 *   which PHP runs before it flushes output buffers. A page that flushes
 *   early calls session_write_close() first (its changes then go with the
 *   headers the flush sends), or sessiond_commit(). A page that ends in a fatal error
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

/** PHP's session save handler while sessiond.php is included: PHP's own
 *  session API (session_start(), session_write_close(), session_destroy(),
 *  session_regenerate_id()...) reads and writes the request's sessiond
 *  session through it. It stores nothing itself: it tells the Bridge what
 *  PHP did, and the Bridge sends sessiond the changes with the response.
 *  The ids PHP passes are ignored: the session is always the one sessiond
 *  injected for this request, so no id an application names can reach
 *  another visitor's session. */
final class SaveHandler implements \SessionHandlerInterface, \SessionIdInterface,
    \SessionUpdateTimestampHandlerInterface
{
    public function open(string $path, string $name): bool
    {
        return Bridge::nativeOpen();
    }
    public function close(): bool { return true; }
    public function read(string $id): string|false
    {
        return Bridge::nativeRead(self::calledBy());
    }
    public function write(string $id, string $data): bool
    {
        return Bridge::nativeWrite();
    }
    public function updateTimestamp(string $id, string $data): bool
    {
        // lazy_write: PHP calls this instead of write() when nothing changed.
        return Bridge::nativeWrite();
    }
    public function destroy(string $id): bool
    {
        return Bridge::nativeDestroy(self::calledBy());
    }
    public function create_sid(): string
    {
        return Bridge::nativeId(self::calledBy());
    }
    public function validateId(string $id): bool { return true; }
    public function gc(int $max_lifetime): int|false { return 0; }

    /** The PHP function that made PHP call the handler (session_destroy,
     *  session_regenerate_id, session_start...): destroy() and create_sid()
     *  mean different things for sessiond depending on it. */
    private static function calledBy(): string
    {
        foreach (debug_backtrace(DEBUG_BACKTRACE_IGNORE_ARGS, 4) as $frame) {
            if (!isset($frame['class']) && str_starts_with($frame['function'], 'session_')) {
                return $frame['function'];
            }
        }
        return '';
    }
}

/** The request's session state; one per request (php-fpm runs one request
 *  per worker process at a time), reset by start(). */
final class Bridge
{
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
    /** PHP's session API was used (session_start() opened the handler):
     *  the session to store is then what PHP last wrote, not $_SESSION. */
    private static bool $native = false;
    /** @var mixed what PHP's session last wrote ($_SESSION at
     *  session_write_close() or the end); null: nothing written yet */
    private static mixed $written = null;
    /** session_destroy() was called: the stored session goes, and what a
     *  later session_start() of the request writes is a new session. */
    private static bool $destroyed = false;
    private static bool $idGiven = false;
    /** atShutdown() is deciding the request's end: the headers it lets go
     *  out are none of atHeaders()' business. */
    private static bool $ending = false;
    /** The changes could not be sent when output left early: the request
     *  is a 500, and nothing more is tried. */
    private static bool $failed = false;
    /** The route's SESSION_MODE: off, read, write or exclusive. On off and
     *  read routes the session cannot be changed (see refuseChanges()). */
    private static string $mode = 'write';
    /** SESSION_STATUS (see sessiond_status()); null on an off route. */
    private static ?string $status = null;

    public static function start(): void
    {
        // The route's SESSION_MODE, as sessiond sets it (a client cannot:
        // its header arrives as HTTP_SESSION_MODE). An off route gets no
        // session at all, so nothing is read and no SESSION_NEW comes.
        self::$mode = (string)($_SERVER['SESSION_MODE'] ?? 'write');
        $off = self::$mode === 'off';
        // A sessiond older than the status sends none: what SESSION_NEW says.
        self::$status = $off ? null : (string)($_SERVER['SESSION_STATUS']
            ?? (($_SERVER['SESSION_NEW'] ?? '1') === '1' ? 'new' : 'ok'));
        if (!$off && !isset($_SERVER['SESSION_NEW'])) {
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
            throw new Error('PHP\'s session was started before sessiond.php (session.auto_start?): '
                . 'turn session.auto_start off, so that session_start() goes through sessiond');
        }
        // PHP's session never sends its cookie nor puts the id in URLs:
        // the cookie is sessiond's. An application may set these again: the
        // header filter below still holds.
        ini_set('session.use_cookies', '0');
        ini_set('session.use_only_cookies', '1');
        ini_set('session.use_trans_sid', '0');
        ini_set('session.use_strict_mode', '0');
        ini_set('session.gc_probability', '0');
        self::refuseIdsInUrls();
        session_set_save_handler(new SaveHandler(), false);
        header_register_callback([self::class, 'atHeaders']);
        set_error_handler([self::class, 'atWarning'], E_WARNING);
        self::$loaded = $off ? [] : self::decodeSession(self::sessionText($_SERVER),
            self::sessionText($_SERVER, 'SESSION_TYPES', 'SESSION_TYPES_CHUNK'));
        self::$committed = null;
        self::$regenerate = self::$abandon = self::$clear = self::$lastInLine = false;
        self::$native = self::$destroyed = self::$idGiven = self::$ending = self::$failed = false;
        self::$written = null;
        // For code written for the bridge's own functions, $_SESSION holds
        // the session without session_start(); session_start() puts the
        // same in it again.
        $_SESSION = self::$loaded;
        ob_start();
        register_shutdown_function([self::class, 'atShutdown']);
    }

    /** Called as PHP is about to send the headers (at the end, or when the
     *  page flushes output early). A page that flushes after
     *  session_write_close() has stored its session as far as PHP is
     *  concerned: its changes go out now, with these headers. */
    public static function atHeaders(): void
    {
        self::dropPhpCookie();
        if (self::$ending || self::$committed !== null || !self::$native
            || session_status() === PHP_SESSION_ACTIVE) {
            return;
        }
        try {
            self::commit();
        } catch (Error $e) {
            // Too late to withhold the body: a 500 and no change, and PHP's
            // log says why.
            self::$failed = true;
            http_response_code(500);
            error_log('PHP Fatal error:  Uncaught ' . \get_class($e) . ': ' . $e->getMessage());
        }
    }

    /** Old code that starts PHP's session only `if (!isset($_SESSION))`
     *  finds $_SESSION set (see start()) and never starts it; its
     *  session_regenerate_id() and session_destroy() then fail with PHP's
     *  warning. A login must still change the id, a logout still end the
     *  session: they become the bridge's regenerate and abandon. (An
     *  application that installs its own error handler replaces this one.)
     *  PHP's own handling of the warning goes on. */
    public static function atWarning(int $type, string $message): bool
    {
        if (!self::$native && self::$committed === null && session_status() === PHP_SESSION_NONE) {
            if (str_starts_with($message, 'session_regenerate_id(): Session ID cannot be regenerated when there is no active session')) {
                self::$regenerate = true;
            } elseif (str_starts_with($message, 'session_destroy(): Trying to destroy uninitialized session')) {
                self::abandon();
            }
        }
        return false;
    }

    /** PHP puts the session id in URLs and forms (session.use_trans_sid)
     *  and in SID (use_only_cookies off): with the bridge that id is
     *  sessiond's own cookie value, which must never leave as text a page
     *  shows, a Referer carries or a log keeps. A pool that locks either on
     *  (php_admin_flag), or a page that turns it on, gets a 500. */
    private static function refuseIdsInUrls(): void
    {
        if (ini_get('session.use_trans_sid') || !ini_get('session.use_only_cookies')) {
            throw new Error('session.use_trans_sid is on or session.use_only_cookies off: PHP would put '
                . 'the session id (sessiond\'s cookie) in URLs; turn them off in the pool '
                . '(php_admin_flag[session.use_trans_sid] = off, php_admin_flag[session.use_only_cookies] = on)');
        }
    }

    /** Removes any cookie of PHP's session (an application that set
     *  session.use_cookies again), so the only session cookie is sessiond's. */
    private static function dropPhpCookie(): void
    {
        $name = rawurlencode((string)session_name());
        $keep = [];
        $dropped = false;
        foreach (headers_list() as $h) {
            if (stripos($h, 'Set-Cookie:') !== 0) {
                continue;
            }
            if (str_starts_with(ltrim(substr($h, 11)), $name . '=')) {
                $dropped = true;
            } else {
                $keep[] = $h;
            }
        }
        if ($dropped) {
            header_remove('Set-Cookie');
            foreach ($keep as $h) {
                header($h, false);
            }
        }
    }

    // --- PHP's session API, through SaveHandler.

    public static function nativeOpen(): bool
    {
        self::refuseIdsInUrls();  // the application may have set them again since
        self::$native = true;
        return true;
    }

    /** Gives $_SESSION the session as PHP's session_start() (or
     *  session_reset()) finds it: what this request wrote last
     *  (session_write_close() then session_start()), else what sessiond
     *  loaded; nothing after session_destroy(). Put in $_SESSION directly
     *  (PHP has just emptied it, and decodes nothing from the '' returned),
     *  so no serialize_handler is involved. session_regenerate_id() reads
     *  too, and keeps $_SESSION as it is: left alone then. */
    public static function nativeRead(string $by): string
    {
        if ($by !== 'session_regenerate_id') {
            $_SESSION = self::$written ?? (self::$destroyed ? [] : self::$loaded);
        }
        return '';
    }

    public static function nativeWrite(): bool
    {
        // $_SESSION is what PHP is writing ($data is its serialization):
        // taken as it is, checked when the directives are made.
        self::$written = $_SESSION;
        return true;
    }

    public static function nativeDestroy(string $by): bool
    {
        // session_regenerate_id(true) destroys the old id too; sessiond's
        // regenerate does that itself, with the data kept.
        if ($by === 'session_destroy') {
            self::$destroyed = true;
            self::$written = null;
        }
        return true;
    }

    /** The id PHP's session shows (session_id()): sessiond's for a visitor
     *  who has one; a stand-in for a new visitor, or after
     *  session_regenerate_id() or session_destroy(), whose real id
     *  sessiond makes at commit and sends only in its cookie. */
    public static function nativeId(string $by): string
    {
        // session_create_id() asks the handler too: it gets a random id,
        // never the visitor's.
        if ($by === 'session_regenerate_id') {
            self::$regenerate = true;
        } elseif ($by === 'session_start' && !self::$idGiven && !self::$destroyed
                && ($_SERVER['SESSION_ID'] ?? '') !== '') {
            self::$idGiven = true;
            return (string)$_SERVER['SESSION_ID'];
        }
        if ($by !== 'session_create_id') {
            self::$idGiven = true;
        }
        return bin2hex(random_bytes(16));
    }

    public static function status(): ?string
    {
        return self::$status;
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
        self::closeNative();
        $headers = self::directives();
        self::refuseChanges($headers);
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
        self::$ending = true;
        if (self::$failed) {
            return;
        }
        if (self::foreignSession()) {
            trigger_error('sessiond.php: PHP\'s session ran on the application\'s own save handler '
                . '(session_set_save_handler() or session.save_handler): that handler keeps it, '
                . 'and nothing of its $_SESSION is stored in sessiond', E_USER_WARNING);
        }
        $error = error_get_last();
        if ($error !== null && ($error['type'] & self::FATAL) !== 0) {
            // The page failed: keep none of its changes.
            if (session_status() === PHP_SESSION_ACTIVE) {
                session_abort();
            }
            if (!headers_sent()) {
                http_response_code(500);
            }
            return;
        }
        if (self::$committed !== null) {
            self::closeNative();
            if (self::sessionNow() !== self::$committed) {
                trigger_error('sessiond.php: $_SESSION changed after sessiond_commit(); '
                    . 'those changes are not stored', E_USER_WARNING);
            }
            return;
        }
        if (headers_sent($file, $line)) {
            self::closeNative();
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

    /** On a route whose SESSION_MODE is off or read the session is not
     *  stored: a change the page made is its mistake (or the route's),
     *  refused with an Error naming it, never dropped in silence. */
    private static function refuseChanges(array $directives): void
    {
        if ($directives === [] || (self::$mode !== 'off' && self::$mode !== 'read')) {
            return;
        }
        $what = [];
        foreach ($directives as $h) {
            [$name, $value] = explode(': ', $h, 2);
            $what[] = match ($name) {
                'X-Session-Set', 'X-Session-Set-Json'
                    => "\$_SESSION['" . self::shown(urldecode(strstr($value, '=', true))) . "'] set",
                'X-Session-Remove' => "\$_SESSION['" . self::shown(urldecode($value)) . "'] removed",
                'X-Session-Abandon' => 'the session destroyed',
                'X-Session-Regenerate' => 'the id regenerated',
                default => '$_SESSION emptied',
            };
        }
        throw new Error('the session cannot change on this route (SESSION_MODE ' . self::$mode
            . ', set by the web server): ' . implode(', ', \array_slice($what, 0, 5))
            . (\count($what) > 5 ? ', ...' : '') . '; nothing was stored. Change the session on a route '
            . 'whose SESSION_MODE is write, or leave $_SESSION as it was read');
    }

    /** @return list<string> the header lines sessiond takes as directives */
    private static function directives(): array
    {
        if (self::$abandon) {
            return ['X-Session-Abandon: 1'];
        }
        $session = self::currentSession();
        $clear = self::$clear;
        $regenerate = self::$regenerate;
        if (self::$destroyed) {
            if ($session === []) {
                return ['X-Session-Abandon: 1'];
            }
            // session_destroy() then a new session in the same request (a
            // message for the login page...): the old id dies, and the
            // session under the new one holds only what was written since.
            $clear = $regenerate = true;
        }
        $out = [];
        if ($clear) {
            $out[] = 'X-Session-Clear: 1';
        } else {
            foreach (self::$loaded as $key => $_) {
                if (!\array_key_exists($key, $session)) {
                    $out[] = 'X-Session-Remove: ' . rawurlencode((string)$key);
                }
            }
        }
        foreach ($session as $key => $value) {
            if (!$clear && \array_key_exists($key, self::$loaded) && self::$loaded[$key] === $value) {
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
            $out[] = (\is_string($value) ? 'X-Session-Set: ' : 'X-Session-Set-Json: ')
                . rawurlencode($key) . '=' . rawurlencode($stored);
        }
        if ($regenerate) {
            $out[] = 'X-Session-Regenerate: 1';
        }
        return $out;
    }

    private static function unchanged(): bool
    {
        return !self::$destroyed && self::sessionNow() === self::$loaded;
    }

    /** Ends PHP's session if it is still active, as PHP would at the end of
     *  the request: its $_SESSION is then what PHP wrote. */
    private static function closeNative(): void
    {
        if (session_status() === PHP_SESSION_ACTIVE) {
            session_write_close();
        }
    }

    /** The session the request leaves: $_SESSION for code that never
     *  started PHP's session, else what PHP's session last wrote (so
     *  changes after session_write_close() are not stored). */
    private static function sessionNow(): mixed
    {
        if (!self::$native) {
            // PHP's session ran on a save handler of the application's own:
            // $_SESSION is that handler's session, not sessiond's, and none
            // of it is sessiond's to store.
            return self::foreignSession() ? self::$loaded : $_SESSION;
        }
        return self::$written ?? (self::$destroyed ? [] : self::$loaded);
    }

    /** PHP's session was started, but not through the bridge's handler
     *  (the application installed its own, or set session.save_handler). */
    private static function foreignSession(): bool
    {
        return !self::$native && (session_status() === PHP_SESSION_ACTIVE || session_id() !== '');
    }

    /** @return array<array-key, mixed> */
    private static function currentSession(): array
    {
        $session = self::sessionNow();
        if (!\is_array($session)) {
            throw new Error('$_SESSION is no longer an array (' . get_debug_type($session)
                . '); use $_SESSION = [] or session_unset() to empty it');
        }
        return $session;
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

    /** The bytes stored for $value (see the file's comment): a string as it
     *  is (a string item), anything else as its JSON text (a JSON item). */
    public static function encodeValue(string $key, mixed $value): string
    {
        if (\is_string($value)) {
            return $value;
        }
        self::checkStorable($key, $value, 0);
        try {
            return json_encode($value, self::JSON_FLAGS);
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

    /** The value a stored item stands for (see the file's comment): a
     *  string item as it is; a JSON item as what its JSON says (sessiond
     *  checked it is JSON; text PHP cannot decode, nested past 512, stays
     *  the string it is). */
    public static function decodeValue(string $stored, bool $json = false): mixed
    {
        if (!$json) {
            return $stored;
        }
        try {
            return json_decode($stored, true, 512, JSON_THROW_ON_ERROR);
        } catch (\JsonException) {
            return $stored;
        }
    }

    /** A text sessiond sent: $name (HTTP_SESSION, SESSION_TYPES), or, when
     *  it was too large for one FastCGI record, its pieces {$chunk}_1 ...
     *  {$chunk}_N (N in {$chunk}S) joined in order. */
    public static function sessionText(array $server, string $name = 'HTTP_SESSION',
        string $chunk = 'SESSION_CHUNK'): string
    {
        if (!isset($server["{$chunk}S"])) {
            return (string)($server[$name] ?? '');
        }
        $n = (string)$server["{$chunk}S"];
        if (!ctype_digit($n)) {
            throw new Error("{$chunk}S is '" . self::shown($n) . "', not a number");
        }
        $chunks = [];
        for ($i = 1; $i <= (int)$n; ++$i) {
            if (!isset($server["{$chunk}_$i"])) {
                throw new Error("{$chunk}S is $n but {$chunk}_$i is missing");
            }
            $chunks[] = $server["{$chunk}_$i"];
        }
        return implode('', $chunks);
    }

    /** HTTP_SESSION ("key=value&key=value", both percent-encoded) -> decoded
     *  items; $types (SESSION_TYPES: "key&key", percent-encoded) names the
     *  JSON items. */
    public static function decodeSession(string $text, string $types = ''): array
    {
        $json = [];
        foreach (explode('&', $types) as $key) {
            if ($key !== '') {
                $json[rawurldecode($key)] = true;
            }
        }
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
            $key = urldecode(substr($text, $at, $eq - $at));
            $items[$key] = self::decodeValue(urldecode(substr($text, $eq + 1, $end - $eq - 1)), isset($json[$key]));
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

/** What became of the visitor's session, as sessiond tells it
 *  (SESSION_STATUS): 'new' (no session cookie), 'ok', 'expired' (the cookie
 *  named a session that has ended: timed out, logged out elsewhere),
 *  'regenerated' (an id a login moved, within its rotation grace) or
 *  'unavailable' (the store is out of reach on a SESSION_ON_STORE_ERROR
 *  degrade route: no session, and a change is a 503); null on an off route. */
function sessiond_status(): ?string
{
    return \Sessiond\Bridge::status();
}

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
