# Self-test of the Test::Nginx::Socket runner against plain nginx (no vodlms
# module): exercises the parts of the file format our suites rely on.  It
# must pass under t/compat's runner and under the real openresty one.
#
#   TEST_NGINX_BINARY=/usr/sbin/nginx prove -I t/compat t/000-runner.t

use Test::Nginx::Socket 'no_plan';
use IO::Socket::INET;

# A free port for the embedded TCP server (--- tcp_listen).
$ENV{TEST_NGINX_TCP_PORT} ||= do {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 1) or die "no free port: $!";
    $s->sockport;
};

repeat_each(2);
no_shuffle();       # TEST 3 reuses the nginx of TEST 2
run_tests();

__DATA__

=== TEST 1: return, add_header, more_headers, absent headers
--- config
    location = /t {
        add_header X-Test "yes";
        return 200 "foo=$http_x_foo bar=$http_x_bar\n";
    }
--- request
GET /t
--- more_headers
X-Foo: 1
X-Bar: two words
--- response_headers
X-Test: yes
Content-Type: text/plain
!X-Absent
!Transfer-Encoding
--- response_body
foo=1 bar=two words
--- no_error_log
[error]
[warn]



=== TEST 2: user_files served from the default location, chomp filter
--- config
    location = /nonl { return 200 "no newline"; }
--- user_files
>>> hello.txt
hello, world
>>> sub/dir/a.txt
nested
--- request eval
["GET /sub/dir/a.txt", "GET /nonl"]
--- response_body eval
["nested\n", "no newline"]
--- response_headers eval
["Content-Length: 7", "Content-Length: 10"]



=== TEST 3: a block without --- config runs against the previous nginx
--- request
GET /nonl
--- response_body chop
no newline



=== TEST 4: chomp filter on the expected body
--- config
    location = /nonl { return 200 "no newline"; }
--- request
GET /nonl
--- response_body chomp
no newline



=== TEST 5: chunked response (ssi) is de-chunked before comparing
--- config
    location /ssi/ {
        ssi on;
        alias $TEST_NGINX_SERVER_ROOT/html/;
    }
--- user_files
>>> page.html
before <!--# echo var="arg_x" default="none" --> after
--- request
GET /ssi/page.html?x=42
--- raw_response_headers_like: Transfer-Encoding: chunked\r\n
--- response_headers
!Content-Length
--- response_body
before 42 after



=== TEST 6: HTTP/1.0 request: no chunking, body delimited by close
--- config
    location /ssi/ {
        ssi on;
        alias $TEST_NGINX_SERVER_ROOT/html/;
    }
--- user_files
>>> page.html
a<!--# echo var="server_protocol" -->b
--- request
GET /ssi/page.html HTTP/1.0
--- raw_response_headers_unlike
Transfer-Encoding
--- response_body
aHTTP/1.0b



=== TEST 7: request body: Content-Length is computed from the trimmed body
--- config
    location = /len {
        return 200 "method=$request_method len=$content_length\n";
    }
--- request
POST /len
hello world
--- response_body
method=POST len=11



=== TEST 8: several requests (request eval array) against one nginx
--- config
    location /dav/ {
        alias $TEST_NGINX_SERVER_ROOT/html/;
        dav_methods PUT DELETE;
    }
--- request eval
["PUT /dav/x.txt\nhello", "GET /dav/x.txt", "DELETE /dav/x.txt", "GET /dav/x.txt"]
--- error_code eval
[201, 200, 204, 404]
--- response_body_like eval
["^\$", "^hello\$", "^\$", "404 Not Found"]
--- response_headers eval
["", "Content-Length: 5", "", "!Last-Modified"]



=== TEST 9: each request of a request array has its own connection
--- config
    location = /conn { return 200 "$http_connection $connection_requests\n"; }
--- request eval
["GET /conn", "GET /conn HTTP/1.0"]
--- response_body eval
["close 1\n", "close 1\n"]
--- no_error_log
[error]



=== TEST 10: pipelined requests share one keep-alive connection
--- config
    location = /conn { return 200 "$http_connection $connection_requests\n"; }
    location = /teapot { return 418 "short and stout\n"; }
--- pipelined_requests eval
["GET /conn", "GET /teapot", "GET /missing", "GET /conn"]
--- error_code eval
[200, 418, 404, 200]
--- response_body_like eval
["^keep-alive 1\n\$", "^short and stout\n\$", "404 Not Found", "^close 4\n\$"]
--- response_headers eval
["Content-Type: text/plain", "!X-Nothing", "Content-Type: text/html", "Connection: close"]
--- no_error_log
[crit]



=== TEST 11: error_log with strings and a qr// (eval array)
--- config
--- request
GET /does-not-exist.txt
--- error_code: 404
--- error_log eval
["No such file or directory", qr{open\(\) "[^"]+/html/does-not-exist\.txt" failed}]
--- no_error_log
[alert]



=== TEST 12: log_level section, no_error_log with an eval array
--- log_level: warn
--- config
    location = /t { return 204; }
--- request
GET /t
--- error_code: 204
--- response_body:
--- no_error_log eval
["[debug]", "[notice]", qr/\[(error|crit)\]/]



=== TEST 13: error_code_like, response_body_like with eval qr
--- config
    location = /t { return 302 /elsewhere; }
--- request
GET /t
--- error_code_like: ^30[12]$
--- response_body_like eval
qr{<center>nginx[^<]*</center>}
--- raw_response_headers_like: Location: http://localhost(?::\d+)?/elsewhere\r\n



=== TEST 14: main_config and post_main_config are emitted
--- main_config
    thread_pool vodlms_runner_pool threads=1;
--- post_main_config
    worker_shutdown_timeout 5s;
--- config
    location /threads/ {
        aio threads=vodlms_runner_pool;
        alias $TEST_NGINX_SERVER_ROOT/html/;
    }
--- user_files
>>> f.txt
via a thread pool
--- request
GET /threads/f.txt
--- response_body
via a thread pool



=== TEST 15: $TEST_NGINX_RAND_PORT_N and a second server in http_config
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { return 200 "backend saw $uri\n"; }
    }
--- config
    location /proxy/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
    }
--- request
GET /proxy/abc
--- response_body
backend saw /abc
--- no_error_log
[error]



=== TEST 16: embedded TCP server (tcp_listen, tcp_query, tcp_reply)
--- config
    location = /up {
        proxy_pass http://127.0.0.1:$TEST_NGINX_TCP_PORT/back;
    }
--- tcp_listen eval: $ENV{TEST_NGINX_TCP_PORT}
--- tcp_query eval
"GET /back HTTP/1.0\r\nHost: 127.0.0.1:$ENV{TEST_NGINX_TCP_PORT}\r\nConnection: close\r\n\r\n"
--- tcp_reply eval
"HTTP/1.0 200 OK\r\nContent-Length: 6\r\nX-From: tcp\r\n\r\nfrom 1"
--- request
GET /up
--- response_headers
X-From: tcp
--- response_body chomp
from 1



=== TEST 17: raw_request is sent as is
--- config
    location = /t { return 200 "raw $server_protocol\n"; }
--- raw_request eval
"GET /t HTTP/1.0\r\nHost: localhost\r\n\r\n"
--- response_body
raw HTTP/1.0



=== TEST 18: request split in packets, with a delay
--- config
    location = /len {
        return 200 "len=$content_length\n";
    }
--- request eval
[["POST /len\nhel", {value => "lo", delay_before => 0.05}]]
--- response_body
len=5



=== TEST 19: client timeout with --- abort is not a failure; ignore_response
--- config
    location = /hang {
        proxy_read_timeout 10s;
        proxy_pass http://127.0.0.1:$TEST_NGINX_TCP_PORT/;
    }
--- tcp_listen eval: $ENV{TEST_NGINX_TCP_PORT}
--- tcp_reply:
--- tcp_no_close
--- request
GET /hang
--- timeout: 300ms
--- abort
--- ignore_response
--- no_error_log
[error]



=== TEST 20: access_log and no_access_log
--- config
    location = /t { return 200 "logged\n"; }
--- request
GET /t?from=runner
--- response_body
logged
--- access_log
"GET /t?from=runner HTTP/1.1" 200
--- no_access_log
GET /never-requested



=== TEST 21: wait, then shutdown_error_log after nginx stops
--- config
    location = /t { return 200 "bye\n"; }
--- request
GET /t
--- wait: 0.05
--- response_body
bye
--- shutdown_error_log
(SIGQUIT) received



=== TEST 22: SKIP blocks are not run
--- SKIP
--- config
    location = /t { return 500; }
--- request
GET /t
--- response_body
this would fail



=== TEST 23: the last block run (LAST)
--- LAST
--- config
    location = /t { return 200 "last\n"; }
--- request
GET /t
--- response_body
last



=== TEST 24: after LAST: never run
--- config
    location = /t { return 500; }
--- request
GET /t
--- response_body
this would fail
