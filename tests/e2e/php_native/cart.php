<?php
// ?add=ITEM puts one ITEM in the cart (an array in the session); ?clear=1 empties it.
session_start();
if (isset($_GET['add'])) {
    $_SESSION['cart'][$_GET['add']] = ($_SESSION['cart'][$_GET['add']] ?? 0) + 1;
}
if (isset($_GET['clear'])) {
    unset($_SESSION['cart']);
}
header('Content-Type: text/plain; charset=utf-8');
echo 'cart: ', json_encode($_SESSION['cart'] ?? []), "\n";
