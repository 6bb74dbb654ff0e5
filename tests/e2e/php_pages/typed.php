<?php
// The counter in PHP (visits, an int), and ?n=N&cart=1: visits = N and a
// cart ['apple' => 1]. Prints each item's PHP type and value.
require_once 'sessiond.php';
header('Content-Type: text/plain; charset=utf-8');
if (isset($_GET['n'])) {
    $_SESSION['visits'] = (int)$_GET['n'];
} else {
    $_SESSION['visits'] = ($_SESSION['visits'] ?? 0) + 1;
}
if (isset($_GET['cart'])) {
    $_SESSION['cart'] = ['apple' => 1];
}
foreach ($_SESSION as $k => $v) {
    echo $k, ' ', get_debug_type($v), ' ', json_encode($v), "\n";
}
