<?php
// The PHP counter of tests/e2e/helpers_counter.sh: PHP's own session API,
// through the bridge (an int, stored as JSON), as tests/e2e/pages/helper?count
// counts in sh, helper.py?count in Python and helper.pl?count in Perl.
session_start();
$_SESSION['visits'] = ($_SESSION['visits'] ?? 0) + 1;
header('Content-Type: text/plain');
echo 'php ', $_SESSION['visits'], "\n";
