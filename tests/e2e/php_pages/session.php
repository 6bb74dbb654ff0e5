<?php
// A test page for sessiond's PHP bridge. Prints the session it was given,
// one line per item: "key type json" (get_debug_type and JSON of the value),
// then changes it as the query string asks, in this order:
//   barrier=DIR&n=N  marks its arrival in DIR and waits (up to 20 s) until N
//                    requests have arrived there, or fails (an exception)
//   set[K]=V         $_SESSION[K] = V, a string
//   json[K]=J        $_SESSION[K] = the value of the JSON text J
//   big[K]=N         $_SESSION[K] = N bytes of 'v'
//   emptykey=1       $_SESSION[''] = 'x'
//   unset[]=K        unset($_SESSION[K])
//   regenerate=1, abandon=1, clear=1 (sessiond_regenerate(), ...)
//   then=commit|flush|commit-flush|fatal|throw|exit|late   how it ends
require_once 'sessiond.php';

header('Content-Type: text/plain; charset=utf-8');
foreach ($_SESSION as $k => $v) {
    echo $k, ' ', get_debug_type($v), ' ', json_encode($v, JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION), "\n";
}
echo "end of session\n";

if (isset($_GET['barrier'])) {
    $dir = $_GET['barrier'];
    touch($dir . '/' . getmypid() . '-' . bin2hex(random_bytes(4)));
    for ($i = 0; count(glob($dir . '/*')) < (int)$_GET['n']; ++$i) {
        if ($i > 2000) {
            throw new RuntimeException('barrier: only ' . count(glob($dir . '/*')) . ' requests arrived');
        }
        usleep(10000);
    }
}
foreach ($_GET['set'] ?? [] as $k => $v) {
    $_SESSION[$k] = $v;
}
foreach ($_GET['big'] ?? [] as $k => $n) {
    $_SESSION[$k] = str_repeat('v', (int)$n);
}
if (isset($_GET['emptykey'])) {
    $_SESSION[''] = 'x';
}
foreach ($_GET['json'] ?? [] as $k => $v) {
    $_SESSION[$k] = json_decode($v, true, 512, JSON_THROW_ON_ERROR);
}
foreach ($_GET['unset'] ?? [] as $k) {
    unset($_SESSION[$k]);
}
if (isset($_GET['regenerate'])) {
    sessiond_regenerate();
}
if (isset($_GET['clear'])) {
    sessiond_clear();
    foreach ($_GET['after_clear'] ?? [] as $k => $v) {
        $_SESSION[$k] = $v;
    }
}
if (isset($_GET['abandon'])) {
    sessiond_abandon();
}
switch ($_GET['then'] ?? '') {
    case 'commit':
        sessiond_commit();
        echo "committed\n";
        break;
    case 'commit-flush':
        sessiond_commit();
        ob_end_flush();
        flush();
        $_SESSION['late'] = 'yes';
        break;
    case 'flush':
        // Every buffer, php.ini's output_buffering too: the headers leave now.
        while (ob_get_level() > 0) {
            ob_end_flush();
        }
        flush();
        break;
    case 'fatal':
        echo "before the fatal error\n";
        undefined_function_of_the_test();
        break;
    case 'throw':
        throw new RuntimeException('the test page threw');
    case 'exit':
        echo "exit\n";
        exit(0);
    case 'late':
        // A change made in a shutdown function the page registers itself.
        register_shutdown_function(function () { $_SESSION['late'] = 'from shutdown'; });
        break;
    case 'session_start':
        session_start();
        break;
}
echo "done\n";
