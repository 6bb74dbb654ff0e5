<?php
// A read-modify-write of the session's counter n, the kind PHP's file
// handler keeps safe by locking the session: read at session_start(), n+1
// a tenth of a second later, so that requests sent together overlap unless
// something makes them take turns.
session_start();
$n = $_SESSION['n'] ?? 0;
usleep(100000);
$_SESSION['n'] = $n + 1;
header('Content-Type: text/plain; charset=utf-8');
echo 'n: ', $_SESSION['n'], "\n";
