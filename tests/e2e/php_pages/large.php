<?php
// A test page for large sessions through sessiond's PHP bridge. Prints how
// sessiond delivered the session ("chunks N", or "chunks none" when it came
// whole as HTTP_SESSION), then one line per item, "key bytes md5" of the
// value (a string), then changes the session as the query string asks:
//   fill[K]=N      $_SESSION[K] = N bytes, each the first byte of K
//   text[K]=N      $_SESSION[K] = N/2 times "é" (non-ASCII: 2 bytes, and 6
//                  once percent-encoded)
//   regenerate=1, abandon=1 (sessiond_regenerate(), sessiond_abandon())
//   rewrite=1      sessiond_clear() and every item put back: the whole
//                  session written again, as one X-Session-Set each
require_once 'sessiond.php';

header('Content-Type: text/plain; charset=utf-8');
echo 'chunks ', $_SERVER['SESSION_CHUNKS'] ?? 'none', "\n";
foreach ($_SESSION as $k => $v) {
    echo $k, ' ', \strlen($v), ' ', md5($v), "\n";
}
foreach ($_GET['fill'] ?? [] as $k => $n) {
    $_SESSION[$k] = str_repeat(((string)$k)[0], (int)$n);
}
foreach ($_GET['text'] ?? [] as $k => $n) {
    $_SESSION[$k] = str_repeat('é', intdiv((int)$n, 2));
}
if (isset($_GET['regenerate'])) {
    sessiond_regenerate();
}
if (isset($_GET['rewrite'])) {
    $all = $_SESSION;
    sessiond_clear();
    $_SESSION = $all;
}
if (isset($_GET['abandon'])) {
    sessiond_abandon();
}
echo "done\n";
