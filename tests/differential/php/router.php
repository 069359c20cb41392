<?php
// PHP upstream of the differential test (tests/differential/run.sh), run by the built-in
// server (`php -S 127.0.0.1:PORT router.php`). A front controller that routes the way legacy
// PHP routers and frameworks do:
//   - the path is REQUEST_URI without its query, rawurldecode()d once;
//   - X-Original-URL / X-Rewrite-URL replace it when present (Symfony's and Zend's IIS support);
//   - `\` is a `/` (Windows-minded routers), repeated `/` collapse, dot segments resolve,
//     a trailing `/` is ignored, and the match is case-insensitive;
//   - the method is `_method` from a POST body or query, or X-HTTP-Method-Override (Laravel).
// Identity is read from $_SERVER, where PHP maps every non-alphanumeric character of a header
// name to `_`: `user_id`, `User-Id` and `user.id` are all $_SERVER['HTTP_USER_ID'].
$records = getenv('DIFF_RECORDS');
header('X-Diff-Stack: php');

$uri = $_SERVER['REQUEST_URI'] ?? '/';
if (isset($_SERVER['HTTP_X_ORIGINAL_URL'])) {
    $uri = $_SERVER['HTTP_X_ORIGINAL_URL'];
} elseif (isset($_SERVER['HTTP_X_REWRITE_URL'])) {
    $uri = $_SERVER['HTTP_X_REWRITE_URL'];
}
$path = explode('?', $uri, 2)[0];
$path = rawurldecode($path);
$path = str_replace('\\', '/', $path);
$segments = [];
foreach (explode('/', $path) as $segment) {
    if ($segment === '' || $segment === '.') continue;
    if ($segment === '..') { array_pop($segments); continue; }
    $segments[] = $segment;
}
$path = '/' . implode('/', $segments);

$method = $_SERVER['REQUEST_METHOD'] ?? 'GET';
if ($method === 'POST' && isset($_REQUEST['_method']) && is_string($_REQUEST['_method'])) {
    $method = strtoupper($_REQUEST['_method']);
} elseif (isset($_SERVER['HTTP_X_HTTP_METHOD_OVERRIDE'])) {
    $method = strtoupper($_SERVER['HTTP_X_HTTP_METHOD_OVERRIDE']);
}

$lower = strtolower($path);
if ($lower === '/pub/secret' || str_starts_with($lower, '/pub/secret/')) {
    $handler = 'protected';
} elseif (str_starts_with($lower, '/pub/')) {
    $handler = 'public';
} else {
    http_response_code(404);
    header('Content-Type: application/json');
    echo json_encode(['stack' => 'php', 'handler' => null, 'error' => 'no route']);
    return true;
}

$headers = [];
foreach (getallheaders() as $name => $value) {
    $headers[] = [(string)$name, (string)$value];
}
$vars = [];
foreach ($_SERVER as $name => $value) {
    if (is_string($value) && (str_starts_with($name, 'HTTP_') || str_contains($name, 'USER')
        || str_contains($name, 'AUTH') || in_array($name, ['CONTENT_LENGTH', 'CONTENT_TYPE'], true))) {
        $vars[$name] = $value;
    }
}
$record = [
    'stack' => 'php',
    'handler' => $handler,
    'method' => $method,
    'wire_method' => $_SERVER['REQUEST_METHOD'] ?? null,
    'path' => $path,
    'uri' => $_SERVER['REQUEST_URI'] ?? null,
    'diff_id' => $_SERVER['HTTP_X_DIFF_ID'] ?? null,
    'identity' => ['user' => $_SERVER['HTTP_USER_ID'] ?? null, 'group' => $_SERVER['HTTP_GROUP_ID'] ?? null],
    'headers' => $headers,
    'vars' => (object)$vars,
];
$line = json_encode($record, JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE) . "\n";
file_put_contents($records, $line, FILE_APPEND | LOCK_EX);
header('Content-Type: application/json');
echo json_encode(['stack' => 'php', 'handler' => $handler]);
return true;
