<?php
// POST user=NAME: logs in (a new session id: a login is a privilege change).
session_start();
if ($_SERVER['REQUEST_METHOD'] === 'POST' && ($_POST['user'] ?? '') !== '') {
    session_regenerate_id(true);
    $_SESSION['user'] = $_POST['user'];
    $_SESSION['login_time'] = time();
    header('Location: /index', true, 303);
    exit;
}
echo "<form method=post><input name=user><button>Log in</button></form>\n";
