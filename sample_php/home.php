<?php
// GET /home: who is logged in. UserName is the visitor's own text: escape it.
require_once 'sessiond.php';

header('Content-Type: text/html; charset=utf-8');
$name = $_SESSION['UserName'] ?? null;
?>
<!doctype html>
<title>Home</title>
<link rel="stylesheet" href="/static/style.css">
<?php if (is_string($name) && $name !== ''): ?>
<p>Hello, <b><?= htmlspecialchars($name, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8') ?></b>.</p>
<p><a href="/logout">Log out</a></p>
<?php else: ?>
<p>Anonymous User</p>
<p><a href="/login">Log in</a></p>
<?php endif;
