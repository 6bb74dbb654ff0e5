<?php
// PHP's default file sessions: session_start() reads (and locks) the session file.
session_start();
echo "<!doctype html>\n<title>Home</title>\n";
if (isset($_SESSION['UserName'])) {
    echo '<p>Hello, <b>', htmlspecialchars($_SESSION['UserName']), "</b>.</p>\n";
} else {
    echo "<p>Anonymous User</p>\n";
}
