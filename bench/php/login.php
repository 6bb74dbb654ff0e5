<?php
session_start();
$_SESSION['UserName'] = $_POST['UserName'] ?? '';
header('Location: home', true, 303);
