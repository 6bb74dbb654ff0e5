<?php
// The change goes to sessiond as one X-Session-Set at the end of the request.
require_once 'sessiond.php';
$_SESSION['UserName'] = $_POST['UserName'] ?? '';
header('Location: home', true, 303);
