<?php
// GET /login: the login form.
// POST /login: stores UserName in the session, moves the session to a new id
// (a login is a privilege change: the id the visitor had before dies) and
// sends the browser home.
session_start();

if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    $name = $_POST['UserName'] ?? '';
    if (!is_string($name) || $name === '') {
        header('Location: /login', true, 303);
        exit;
    }
    session_regenerate_id(true);
    $_SESSION['UserName'] = $name;
    header('Location: /home', true, 303);
    exit;
}
header('Content-Type: text/html; charset=utf-8');
?>
<!doctype html>
<title>Log in</title>
<link rel="stylesheet" href="/static/style.css">
<form method="post" action="/login">
  <label>User name <input name="UserName" autofocus required></label>
  <button>Log in</button>
</form>
