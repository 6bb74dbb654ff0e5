<?php
// No session lock: requests of one session run side by side.
require_once 'sessiond.php';
usleep(50000);
echo "<!doctype html>\n<title>Home</title>\n";
echo isset($_SESSION['UserName']) ? '<p>Hello, <b>' . htmlspecialchars($_SESSION['UserName']) . "</b>.</p>\n" : "<p>Anonymous User</p>\n";
