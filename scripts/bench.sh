#!/usr/bin/env bash
# Proxy benchmark on loopback: wrk (keep-alive, 64 connections) and
# ab -c 4 -n 10000 against the backend directly, through Linnet, nginx and
# HAProxy, interleaved round by round so that machine noise hits every
# target alike; then h2load (HTTP/2 without TLS, 16 connections of 8
# concurrent streams) the same way, through an h2 router. The load generator runs on CPU 0; the backend and the
# proxies on CPU 1 (Go with GOMAXPROCS=1, nginx worker_processes 1,
# HAProxy nbthread 1). Prints requests/s, p50/p99, proxy CPU time per
# request (from /proc/<pid>/stat), peak RSS (VmHWM) and the ratios to
# direct and to nginx.
#
# Usage: scripts/bench.sh            (make bench builds bin/linnet first)
# Env:   LINNET_BIN (bin/linnet), ROUNDS (3), DURATION (10s), CONNS (64),
#        AB_N (10000), AB_C (4), H2_CONNS (16), H2_STREAMS (8),
#        H2 (1; 0 skips the HTTP/2 part), LINNET_BASE (a second linnet binary, e.g.
#        the previous build, benchmarked in the same rounds as "base" so
#        that a change is measured under the same machine noise)
set -euo pipefail

LINNET_BIN=${LINNET_BIN:-bin/linnet}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
AB_N=${AB_N:-10000}
AB_C=${AB_C:-4}
H2=${H2:-1}
H2_CONNS=${H2_CONNS:-16}
H2_STREAMS=${H2_STREAMS:-8}
LOADCPU=0
SUTCPU=1

# ---- dependencies (Debian packages), installed only when missing ----
need=""
command -v wrk >/dev/null 2>&1 || need="$need wrk"
command -v ab >/dev/null 2>&1 || need="$need apache2-utils"
[ "$H2" = 0 ] || command -v h2load >/dev/null 2>&1 || need="$need nghttp2-client"
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need="$need nginx"
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need="$need haproxy"
if [ -n "$need" ]; then
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	echo "bench: installing$need"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
	# Debian starts them as services on port 80; we run our own.
	for svc in nginx haproxy; do
		$SUDO systemctl stop "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
	done
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
[ -x "$LINNET_BIN" ] || { echo "bench: $LINNET_BIN not found (run make build)"; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "bench: needs 2 CPUs (load on CPU 0, proxies on CPU 1)"; exit 1; }

WORK=$(mktemp -d /tmp/linnet-bench.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	sleep 0.3
	for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

freeport() { # a free loopback port
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
waitport() { # waitport PORT
	i=0
	until (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 100 ] || { echo "bench: port $1 did not open"; exit 1; }
		sleep 0.05
	done
}

BACKEND=$(freeport); NGINXP=$(freeport); HAPROXYP=$(freeport); LINNETP=$(freeport); ADMINP=$(freeport)
# HTTP/2 (h2c, prior knowledge): the backend's, the proxies' and a second
# Linnet process with one h2 router (its own process, so that its peak RSS
# is its own).
BACKEND2=$(freeport); NGINXP2=$(freeport); HAPROXYP2=$(freeport); LINNETP2=$(freeport); ADMINP2=$(freeport)

# ---- backend: nginx answering a small fixed body ----
mkdir -p "$WORK/backend" "$WORK/nginx"
cat >"$WORK/backend/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/backend/nginx.pid;
error_log $WORK/backend/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$BACKEND;
    listen 127.0.0.1:$BACKEND2 http2;
    location / { default_type text/plain; return 200 "Hello (127.0.0.1) world (127.0.0.1)!!\n"; }
  }
}
EOF
taskset -c $SUTCPU "$NGINX" -p "$WORK/backend" -c "$WORK/backend/nginx.conf" &
PIDS="$PIDS $!"

# ---- nginx as a proxy: upstream keepalive ----
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$BACKEND; keepalive 128; }
  server {
    listen 127.0.0.1:$NGINXP;
    # HTTP/2 from the client; nginx speaks HTTP/1.1 to upstreams.
    listen 127.0.0.1:$NGINXP2 http2;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
    }
  }
}
EOF
taskset -c $SUTCPU "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
NGINX_MASTER=$!
PIDS="$PIDS $NGINX_MASTER"

# ---- HAProxy: one thread, connection reuse ----
cat >"$WORK/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend fe
  bind 127.0.0.1:$HAPROXYP
  default_backend be
backend be
  server s1 127.0.0.1:$BACKEND
frontend fe2
  bind 127.0.0.1:$HAPROXYP2 proto h2
  default_backend be2
backend be2
  server s2 127.0.0.1:$BACKEND2 proto h2
EOF
taskset -c $SUTCPU "$HAPROXY" -f "$WORK/haproxy.cfg" -db &
HAPROXY_PID=$!
PIDS="$PIDS $HAPROXY_PID"

# ---- Linnet: one http router ----
cat >"$WORK/linkerd.yaml" <<EOF
admin: {ip: 127.0.0.1, port: $ADMINP}
routers:
- protocol: http
  label: bench
  dtab: /svc/* => /\$/inet/127.0.0.1/$BACKEND;
  servers: [{ip: 127.0.0.1, port: $LINNETP}]
EOF
GOMAXPROCS=1 taskset -c $SUTCPU "$LINNET_BIN" router -log.level=WARNING "$WORK/linkerd.yaml" &
LINNET_PID=$!
PIDS="$PIDS $LINNET_PID"
BASE_PID=""; BASEP=""
if [ -n "${LINNET_BASE:-}" ]; then
	BASEP=$(freeport); BASEADMIN=$(freeport)
	sed -e "s/port: $ADMINP}/port: $BASEADMIN}/" -e "s/port: $LINNETP}/port: $BASEP}/" "$WORK/linkerd.yaml" >"$WORK/linkerd-base.yaml"
	GOMAXPROCS=1 taskset -c $SUTCPU "$LINNET_BASE" router -log.level=WARNING "$WORK/linkerd-base.yaml" &
	BASE_PID=$!
	PIDS="$PIDS $BASE_PID"
fi

for p in $BACKEND $NGINXP $HAPROXYP $LINNETP $BASEP; do waitport "$p"; done
sleep 0.3
NGINX_WORKER=$(pgrep -P "$NGINX_MASTER" | head -n 1)
IDLE_LINNET=$(awk '/^VmHWM:/ {print $2}' "/proc/$LINNET_PID/status")

CLK=$(getconf CLK_TCK)
cputicks() { # utime+stime of a pid, in clock ticks
	awk '{print $14 + $15}' "/proc/$1/stat"
}
hwm() { # VmHWM of a pid in kB
	awk '/^VmHWM:/ {print $2}' "/proc/$1/status"
}
to_ms() { # wrk latency like 1.23ms / 456.00us / 1.02s → ms
	echo "$1" | awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.3f", v}'
}

# target list: name port pid-of-proxy (empty for direct)
TARGETS="direct:$BACKEND: linnet:$LINNETP:$LINNET_PID nginx:$NGINXP:$NGINX_WORKER haproxy:$HAPROXYP:$HAPROXY_PID"
NAMES="direct linnet nginx haproxy"
if [ -n "$BASE_PID" ]; then
	TARGETS="$TARGETS base:$BASEP:$BASE_PID"
	NAMES="$NAMES base"
fi
RES="$WORK/results"
: >"$RES"

echo "bench: backend 127.0.0.1:$BACKEND; $ROUNDS rounds of wrk -c$CONNS -d$DURATION and ab -c$AB_C -n$AB_N per target"
# Warm up every target (connection pools, lazy binding).
for t in $TARGETS; do
	port=$(echo "$t" | cut -d: -f2)
	taskset -c $LOADCPU wrk -t1 -c"$CONNS" -d2s -H "Host: bench" "http://127.0.0.1:$port/" >/dev/null
done

r=1
while [ $r -le "$ROUNDS" ]; do
	for t in $TARGETS; do
		name=$(echo "$t" | cut -d: -f1); port=$(echo "$t" | cut -d: -f2); pid=$(echo "$t" | cut -d: -f3)
		c0=0; [ -n "$pid" ] && c0=$(cputicks "$pid")
		out=$(taskset -c $LOADCPU wrk -t1 -c"$CONNS" -d"$DURATION" --latency -H "Host: bench" "http://127.0.0.1:$port/")
		c1=0; [ -n "$pid" ] && c1=$(cputicks "$pid")
		reqs=$(echo "$out" | awk '/requests in/ {print $1}')
		rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
		p50=$(to_ms "$(echo "$out" | awk '$1=="50%" {print $2}')")
		p99=$(to_ms "$(echo "$out" | awk '$1=="99%" {print $2}')")
		errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
		cpu=$(awk -v a="$c0" -v b="$c1" -v n="$reqs" -v k="$CLK" 'BEGIN { if (n > 0) printf "%.1f", (b - a) * 1e6 / k / n; else print 0 }')
		echo "wrk $name $r $rps $p50 $p99 $cpu" >>"$RES"
		[ -z "$errs" ] || echo "bench: $name round $r: $errs"

		out=$(taskset -c $LOADCPU ab -q -c "$AB_C" -n "$AB_N" -H "Host: bench" "http://127.0.0.1:$port/" 2>&1)
		rps=$(echo "$out" | awk '/^Requests per second/ {print $4}')
		p50=$(echo "$out" | awk '$1=="50%" {print $2}')
		p99=$(echo "$out" | awk '$1=="99%" {print $2}')
		failed=$(echo "$out" | awk '/^Failed requests/ {print $3}')
		echo "ab $name $r $rps $p50 $p99 -" >>"$RES"
		[ "${failed:-0}" = 0 ] || echo "bench: ab $name round $r: $failed failed requests"
	done
	r=$((r + 1))
done

RSS_LINNET=$(hwm "$LINNET_PID"); RSS_NGINX=$(hwm "$NGINX_WORKER"); RSS_HAPROXY=$(hwm "$HAPROXY_PID")
RSS_BASE=""; [ -z "$BASE_PID" ] || RSS_BASE=$(hwm "$BASE_PID")
# Linnet's resident set split: the binary's own pages (file) and the heap,
# stacks and buffers (anon).
LINNET_SPLIT=$(awk '/^RssAnon:/ {a=$2} /^RssFile:/ {f=$2} END {printf "anon %.1f MB, file %.1f MB", a/1024, f/1024}' "/proc/$LINNET_PID/status")

# ---- table: mean over rounds ----
awk -v rl="$RSS_LINNET" -v rn="$RSS_NGINX" -v rh="$RSS_HAPROXY" -v rb="$RSS_BASE" -v names_s="$NAMES" '
{ k=$1" "$2; n[k]++; rps[k]+=$4; p50[k]+=$5; p99[k]+=$6; if ($7 != "-") cpu[k]+=$7 }
END {
  rss["linnet"]=rl; rss["nginx"]=rn; rss["haproxy"]=rh; if (rb != "") rss["base"]=rb
  split("wrk ab", tools, " "); nn = split(names_s, names, " ")
  for (ti = 1; ti <= 2; ti++) {
    t = tools[ti]
    if (t == "wrk") printf "\nwrk -t1 -c'"$CONNS"' -d'"$DURATION"' (keep-alive), mean of %d rounds\n", n["wrk direct"]
    else printf "\nab -c'"$AB_C"' -n'"$AB_N"' (a new connection per request), mean of %d rounds\n", n["ab direct"]
    printf "%-8s %10s %9s %9s %12s %10s %9s %9s\n", "target", "req/s", "p50 ms", "p99 ms", "CPU us/req", "RSS MB", "x direct", "x nginx"
    for (ni = 1; ni <= nn; ni++) {
      m = names[ni]; k = t" "m
      r = rps[k]/n[k]; d = rps[t" direct"]/n[t" direct"]; g = rps[t" nginx"]/n[t" nginx"]
      c = (t == "wrk" && m != "direct") ? sprintf("%.1f", cpu[k]/n[k]) : "-"
      s = (m in rss) ? sprintf("%.1f", rss[m]/1024) : "-"
      printf "%-8s %10.0f %9.3f %9.3f %12s %10s %9.2f %9.2f\n", m, r, p50[k]/n[k], p99[k]/n[k], c, s, r/d, r/g
    }
  }
}' "$RES"
echo
echo "RSS is VmHWM (peak resident set) of the proxy process (nginx: its worker) over the whole run."
echo "linnet resident at the end: $LINNET_SPLIT."

# ---- HTTP/2: h2load against the backend, Linnet's h2 router, nginx and
# HAProxy, h2c with prior knowledge; interleaved rounds as above ----
if [ "$H2" != 0 ]; then
	cat >"$WORK/linkerd-h2.yaml" <<EOF
admin: {ip: 127.0.0.1, port: $ADMINP2}
routers:
- protocol: h2
  label: bench-h2
  dtab: /svc/* => /\$/inet/127.0.0.1/$BACKEND2;
  servers: [{ip: 127.0.0.1, port: $LINNETP2}]
EOF
	GOMAXPROCS=1 taskset -c $SUTCPU "$LINNET_BIN" router -log.level=WARNING "$WORK/linkerd-h2.yaml" &
	LINNET2_PID=$!
	PIDS="$PIDS $LINNET2_PID"
	waitport "$BACKEND2"; waitport "$NGINXP2"; waitport "$HAPROXYP2"; waitport "$LINNETP2"
	H2TARGETS="direct:$BACKEND2: linnet:$LINNETP2:$LINNET2_PID nginx:$NGINXP2:$NGINX_WORKER haproxy:$HAPROXYP2:$HAPROXY_PID"
	H2RES="$WORK/results-h2"
	: >"$H2RES"
	h2run() { # h2run SECONDS PORT → h2load's output
		taskset -c $LOADCPU h2load -c"$H2_CONNS" -m"$H2_STREAMS" -D "$1" "http://127.0.0.1:$2/" 2>&1
	}
	secs=${DURATION%s}
	echo
	echo "bench: h2load -c$H2_CONNS -m$H2_STREAMS -D$secs (h2c) per target, $ROUNDS rounds"
	for t in $H2TARGETS; do h2run 2 "$(echo "$t" | cut -d: -f2)" >/dev/null; done
	r=1
	while [ $r -le "$ROUNDS" ]; do
		for t in $H2TARGETS; do
			name=$(echo "$t" | cut -d: -f1); port=$(echo "$t" | cut -d: -f2); pid=$(echo "$t" | cut -d: -f3)
			c0=0; [ -n "$pid" ] && c0=$(cputicks "$pid")
			out=$(h2run "$secs" "$port")
			c1=0; [ -n "$pid" ] && c1=$(cputicks "$pid")
			rps=$(echo "$out" | awk '/^finished in/ {print $4}')
			done_=$(echo "$out" | awk '/^requests:/ {print $8}')
			bad=$(echo "$out" | awk '/^requests:/ {print $12 + $14 + $16}')
			non2xx=$(echo "$out" | awk '/^status codes:/ {print $5 + $7 + $9}')
			mean=$(to_ms "$(echo "$out" | awk '/^time for request:/ {print $6}')")
			cpu=$(awk -v a="$c0" -v b="$c1" -v n="$done_" -v k="$CLK" 'BEGIN { if (n > 0) printf "%.1f", (b - a) * 1e6 / k / n; else print 0 }')
			echo "h2 $name $r $rps $mean $cpu" >>"$H2RES"
			[ "${bad:-0}" = 0 ] && [ "${non2xx:-0}" = 0 ] || echo "bench: h2 $name round $r: $bad failed/errored/timed out, $non2xx not 2xx"
		done
		r=$((r + 1))
	done
	RSS_LINNET2=$(hwm "$LINNET2_PID")
	awk -v rl="$RSS_LINNET2" -v conns="$H2_CONNS" -v streams="$H2_STREAMS" '
	{ k=$2; n[k]++; rps[k]+=$4; mean[k]+=$5; cpu[k]+=$6 }
	END {
	  printf "\nh2load -c%s -m%s (HTTP/2, h2c), mean of %d rounds\n", conns, streams, n["direct"]
	  printf "%-8s %10s %10s %12s %10s %9s %9s\n", "target", "req/s", "mean ms", "CPU us/req", "RSS MB", "x direct", "x nginx"
	  split("direct linnet nginx haproxy", names, " ")
	  for (i = 1; i <= 4; i++) {
	    m = names[i]; r = rps[m]/n[m]
	    c = (m != "direct") ? sprintf("%.1f", cpu[m]/n[m]) : "-"
	    s = (m == "linnet") ? sprintf("%.1f", rl/1024) : "-"
	    printf "%-8s %10.0f %10.3f %12s %10s %9.2f %9.2f\n", m, r, mean[m]/n[m], c, s, r/(rps["direct"]/n["direct"]), r/(rps["nginx"]/n["nginx"])
	  }
	}' "$H2RES"
	echo "nginx speaks HTTP/1.1 to its upstream (it has no HTTP/2 client for plain proxying); Linnet and HAProxy speak HTTP/2 to the backend."
	echo "RSS: the h2 router's own process; nginx's and HAProxy's peaks are in the first tables."
fi

# ---- the memory floor: what a process pays before it serves anything ----
# Peak RSS of a process that only starts: Go runs the init of every linked
# package first, and the kernel maps the 64 KB around each page they touch.
startpeak() { # startpeak CMD... → peak RSS in kB of CMD run to its exit
	python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$@"
}
mb() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }'; }
echo
echo "memory floor (peak RSS before any request):"
echo "  linnet router, idle after start-up      $(mb "$IDLE_LINNET")"
echo "  linnet --help (package inits only)      $(mb "$(startpeak "$LINNET_BIN" --help)")"
[ -z "${LINNET_BASE:-}" ] || echo "  base --help (package inits only)        $(mb "$(startpeak "$LINNET_BASE" --help)")"
if command -v go >/dev/null 2>&1 && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$WORK/memfloor" ./scripts/memfloor 2>/dev/null; then
	echo "  client-go + etcd client + gRPC, linked"
	echo "  by a program that does nothing          $(mb "$(startpeak "$WORK/memfloor")")   (scripts/memfloor)"
fi
