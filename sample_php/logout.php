<?php
// GET /logout: ends the session (the stored one is deleted, the cookie
// expired) and sends the browser to the login form.
session_start();
$_SESSION = [];
session_destroy();
header('Location: /login', true, 303);
