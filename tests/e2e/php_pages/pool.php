<?php
// A test page for the pool tests (tests/e2e/php_pool.sh): appends one line
// to the file `log` names each time it runs (so a test can count the runs),
// marks its start in the file `started` names and then waits until the file
// `hold` names is gone (up to 20 s), sleeps `ms` milliseconds, then sets
// each set[K]=V as for session.php and prints the session, one "key=value"
// line per item.
require_once 'sessiond.php';

header('Content-Type: text/plain; charset=utf-8');
if (isset($_GET['log'])) {
    file_put_contents($_GET['log'], getmypid() . ' ' . ($_SERVER['REQUEST_URI'] ?? '') . "\n", FILE_APPEND | LOCK_EX);
}
if (isset($_GET['started'])) {
    file_put_contents($_GET['started'], (string)getmypid());
}
if (isset($_GET['hold'])) {
    for ($i = 0; file_exists($_GET['hold']) && $i < 2000; ++$i) {
        usleep(10000);
    }
}
if (isset($_GET['ms'])) {
    usleep(1000 * (int)$_GET['ms']);
}
foreach ($_GET['set'] ?? [] as $k => $v) {
    $_SESSION[$k] = $v;
}
foreach ($_SESSION as $k => $v) {
    echo $k, '=', is_string($v) ? $v : json_encode($v), "\n";
}
