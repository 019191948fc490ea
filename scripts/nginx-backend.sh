#!/bin/bash
# Starts Debian's nginx as a stand-in model backend on 127.0.0.1:
#   scripts/nginx-backend.sh DIR PORT [PORT...]
# One nginx (one worker process, keep-alive on) listening on each PORT,
# everything (config, logs, temp files, pid) under DIR. It answers
#   /bytes/N      N bytes of a static file (N in 1024, 1048576)
#   anything else a ~200-byte JSON body from memory naming the port
# Prints nginx's master PID. Stop it with: kill "$(cat DIR/nginx.pid)".
set -euo pipefail
dir=$1
shift
[ $# -ge 1 ] || { echo "usage: $0 DIR PORT [PORT...]" >&2; exit 2; }
mkdir -p "$dir/www/bytes" "$dir/tmp"
dir=$(cd "$dir" && pwd)
head -c 1024 /dev/urandom > "$dir/www/bytes/1024"
head -c 1048576 /dev/urandom > "$dir/www/bytes/1048576"

servers=""
for port in "$@"; do
    servers+="
    server {
        listen 127.0.0.1:$port;
        keepalive_requests 100000;
        location /bytes/ { root $dir/www; default_type application/octet-stream; }
        location / {
            default_type application/json;
            return 200 '{\"backend\":\"nginx-$port\",\"model\":\"stand-in\",\"status\":\"ready\",\"note\":\"fixed body served from memory by nginx, a stand-in for a model server\",\"uri\":\"\$uri\"}\n';
        }
    }"
done

# As root, nginx's workers would run as nobody and could not read files
# under a private (mode 700) temporary directory: keep them as the caller.
user_line=""
[ "$(id -u)" -eq 0 ] && user_line="user $(id -un) $(id -gn);"

cat > "$dir/nginx.conf" <<CONF
$user_line
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
daemon on;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    keepalive_timeout 65s;
    $servers
}
CONF
nginx -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf"
for _ in $(seq 50); do
    [ -s "$dir/nginx.pid" ] && break
    sleep 0.1
done
cat "$dir/nginx.pid"
