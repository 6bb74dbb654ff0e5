<?php
// The same page as bench/php/home.php, on sessiond's bridge: $_SESSION is the
// session sessiond injected; nothing to lock, nothing to read from disk.
require_once 'sessiond.php';
echo "<!doctype html>\n<title>Home</title>\n";
if (isset($_SESSION['UserName'])) {
    echo '<p>Hello, <b>', htmlspecialchars($_SESSION['UserName']), "</b>.</p>\n";
} else {
    echo "<p>Anonymous User</p>\n";
}
