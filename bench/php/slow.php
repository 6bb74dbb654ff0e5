<?php
// The session lock is held from session_start() to the end of the script.
session_start();
usleep(50000);
echo "<!doctype html>\n<title>Home</title>\n";
echo isset($_SESSION['UserName']) ? '<p>Hello, <b>' . htmlspecialchars($_SESSION['UserName']) . "</b>.</p>\n" : "<p>Anonymous User</p>\n";
