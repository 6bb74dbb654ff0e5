<?php
// In php-fpm alone the session file stays locked from session_start() to the
// end of the script; behind sessiond nothing is locked.
session_start();
usleep(50000);
echo "<!doctype html>\n<title>Home</title>\n";
echo isset($_SESSION['UserName']) ? '<p>Hello, <b>' . htmlspecialchars($_SESSION['UserName']) . "</b>.</p>\n" : "<p>Anonymous User</p>\n";
