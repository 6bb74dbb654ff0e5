<?php
// The home page: who is logged in, the cart, how many visits.
session_start();
$_SESSION['visits'] = ($_SESSION['visits'] ?? 0) + 1;
header('Content-Type: text/plain; charset=utf-8');
echo 'user: ', $_SESSION['user'] ?? 'nobody', "\n";
echo 'visits: ', $_SESSION['visits'], "\n";
echo 'cart: ', json_encode($_SESSION['cart'] ?? []), "\n";
