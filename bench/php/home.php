<?php
// PHP's plain session API. In php-fpm alone: file sessions, session_start()
// reads (and locks) the file; behind sessiond (auto_prepend_file): the
// session sessiond injected, nothing to lock.
session_start();
echo "<!doctype html>\n<title>Home</title>\n";
if (isset($_SESSION['UserName'])) {
    echo '<p>Hello, <b>', htmlspecialchars($_SESSION['UserName']), "</b>.</p>\n";
} else {
    echo "<p>Anonymous User</p>\n";
}
