<?php
// GET /home: who is logged in. UserName is the visitor's own text: escape it.
// Plain PHP sessions: sessiond's bridge (auto_prepend_file) is their store.
session_start();
$name = $_SESSION['UserName'] ?? null;
session_write_close();   // only read here: other requests of the session need not wait

header('Content-Type: text/html; charset=utf-8');
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
