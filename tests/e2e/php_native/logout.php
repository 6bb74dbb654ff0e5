<?php
// Logs out: the session is destroyed.
session_start();
$_SESSION = [];
session_destroy();
header('Location: /index', true, 303);
