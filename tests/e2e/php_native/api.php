<?php
// PHP's session API, step by step, for tests/e2e/php_native.sh. ?do=STEP,STEP...
// runs each STEP in order; those that show something print one line:
//   old_start               if (!isset($_SESSION)) session_start(); (old code's test)
//   start / start_ro        session_start() / session_start(['read_and_close' => true])
//   set:K=V / json:K=J      $_SESSION[K] = V (a string) / the value of JSON text J
//   unset:K / unset_all     unset($_SESSION[K]) / session_unset()
//   regen1 / regen0         session_regenerate_id(true) / (false)
//   destroy close abort reset   session_destroy(), _write_close(), _abort(), _reset()
//   commit                  sessiond_commit(): the changes go out now, as headers
//   status                  "status N" (session_status())
//   id                      "id set" or "id empty" (session_id())
//   print                   "session JSON" ($_SESSION)
//   pool                    "pool NAME", NAME from the pool's env[SESSIOND_TEST_POOL]
//   whose_id                "id sessiond" when session_id() is sessiond's SESSION_ID
//   create_id               "create random" unless session_create_id() gave SESSION_ID
//   name:N                  session_name(N)
//   cookie                  session_set_cookie_params(3600, '/x'), then
//                           "cookie LIFETIME PATH" from session_get_cookie_params()
//   cookies_on              ini_set('session.use_cookies', '1'): PHP would send its cookie
//   appcookie               setcookie('theme', 'dark'): the application's own cookie
//   limiter:L               session_cache_limiter(L), before the start
//   object                  $_SESSION['o'] = an object (cannot be stored)
//   own_handler             the application's own save handler (PHP's files)
//   trans_sid               session.use_cookies and use_trans_sid on, use_only_cookies off: ids in URLs
//   link                    a link, and SID after it
//   barrier:N               waits (up to 20 s) until N requests reached it (dir: ?dir=)
//   fatal / flush           a fatal error / all output flushed
function out(string $line): void { echo $line, "\n"; }
header('Content-Type: text/plain; charset=utf-8');
foreach (explode(',', $_GET['do'] ?? '') as $step) {
    [$op, $arg] = array_pad(explode(':', $step, 2), 2, '');
    switch ($op) {
        case 'start': out('start ' . var_export(session_start(), true)); break;
        case 'old_start': if (!isset($_SESSION)) { session_start(); } break;
        case 'start_ro': out('start_ro ' . var_export(session_start(['read_and_close' => true]), true)); break;
        case 'set': [$k, $v] = explode('=', $arg, 2); $_SESSION[$k] = $v; break;
        case 'json': [$k, $v] = explode('=', $arg, 2); $_SESSION[$k] = json_decode($v, true, 512, JSON_THROW_ON_ERROR); break;
        case 'unset': unset($_SESSION[$arg]); break;
        case 'unset_all': session_unset(); break;
        case 'regen1': out('regen1 ' . var_export(session_regenerate_id(true), true)); break;
        case 'regen0': out('regen0 ' . var_export(session_regenerate_id(false), true)); break;
        case 'destroy': out('destroy ' . var_export(session_destroy(), true)); break;
        case 'close': session_write_close(); break;
        case 'abort': session_abort(); break;
        case 'reset': session_reset(); break;
        case 'commit': sessiond_commit(); break;
        case 'status': out('status ' . session_status()); break;
        case 'id': out('id ' . (session_id() === '' ? 'empty' : 'set')); break;
        case 'whose_id': out('id ' . (session_id() === $_SERVER['SESSION_ID'] ? 'sessiond' : 'other')); break;
        case 'create_id': out('create ' . (session_create_id() === $_SERVER['SESSION_ID'] ? 'SESSION_ID' : 'random')); break;
        case 'pool': out('pool ' . getenv('SESSIOND_TEST_POOL')); break;
        case 'print': out('session ' . json_encode($_SESSION ?? null, JSON_UNESCAPED_SLASHES)); break;
        case 'name': session_name($arg); break;
        case 'cookie':
            session_set_cookie_params(3600, '/x');
            $p = session_get_cookie_params();
            out("cookie {$p['lifetime']} {$p['path']}");
            break;
        case 'cookies_on': ini_set('session.use_cookies', '1'); break;
        case 'appcookie': setcookie('theme', 'dark'); break;
        case 'limiter': session_cache_limiter($arg); break;
        case 'object': $_SESSION['o'] = new ArrayObject([1]); break;
        case 'trans_sid': ini_set('session.use_cookies', '1'); ini_set('session.use_trans_sid', '1'); ini_set('session.use_only_cookies', '0'); break;
        case 'link': echo '<a href="/next.php">next</a> ', defined('SID') ? SID : '', "\n"; break;
        case 'own_handler': session_set_save_handler(new SessionHandler(), true); break;
        case 'barrier':
            $dir = $_GET['dir'];
            touch($dir . '/' . getmypid() . '-' . bin2hex(random_bytes(4)));
            for ($i = 0; count(glob($dir . '/*')) < (int)$arg; ++$i) {
                if ($i > 2000) {
                    throw new RuntimeException('barrier: only ' . count(glob($dir . '/*')) . ' arrived');
                }
                usleep(10000);
            }
            break;
        case 'fatal': undefined_function_of_the_test(); break;
        case 'flush':
            while (ob_get_level() > 0) {
                ob_end_flush();
            }
            flush();
            break;
        case '': break;
        default: throw new InvalidArgumentException("unknown step $op");
    }
}
out('done');
