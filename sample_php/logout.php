<?php
// GET /logout: ends the session (the stored one is deleted, the cookie
// expired) and sends the browser to the login form.
require_once 'sessiond.php';

sessiond_abandon();
header('Location: /login', true, 303);
