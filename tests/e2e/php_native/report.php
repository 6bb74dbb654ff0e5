<?php
// A slow report: it releases the session early (so the visitor's other
// requests need not wait for it), then takes it again to note it ran.
session_start();
$_SESSION['report_started'] = 'yes';
$user = $_SESSION['user'] ?? 'nobody';
session_write_close();
$_SESSION['after_close'] = 'not stored';   // the session is closed: lost, as PHP says
header('Content-Type: text/plain; charset=utf-8');
echo "report for $user\n";
session_start();
echo 'after_close: ', $_SESSION['after_close'] ?? 'gone', "\n";
$_SESSION['report_done'] = 'yes';
