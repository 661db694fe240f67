memcached_ok=1
run_in_region @region_mb@ /bin/memcached -u root -m @cache_mb@ \
    -l 127.0.0.1 -p 11211 -t 1 &
mpid=$!
wait_for memcstat --servers=127.0.0.1 || memcached_ok=0
head -c 524288 /bin/busybox > /tmp/item
memccp --servers=127.0.0.1 /tmp/item || memcached_ok=0
dseg-window 1
memcslap --servers=127.0.0.1 --test=get --initial-load=@keys@ \
    --execute-number=@keys@ --concurrency=1 > /tmp/slap.out 2>&1
st=$?
dseg-window 2
cat /tmp/slap.out
# memccat ends the value with a newline of its own.
[ "$(memccat --servers=127.0.0.1 item | md5sum)" = \
  "$( (cat /tmp/item; echo) | md5sum)" ] || {
    echo 'memccat: not what was set'; memcached_ok=0; }
memcstat --servers=127.0.0.1 > /tmp/stat.out
hits=$(sed -n 's/^[[:space:]]*get_hits: //p' /tmp/stat.out)
misses=$(sed -n 's/^[[:space:]]*get_misses: //p' /tmp/stat.out)
items=$(sed -n 's/^[[:space:]]*curr_items: //p' /tmp/stat.out)
[ "$st" = 0 ] && [ "$hits" = @items@ ] && [ "$misses" = 0 ] \
    && [ "$items" = @items@ ] || memcached_ok=0
kill $mpid; wait $mpid
r=failed; [ $memcached_ok = 1 ] && r=ok
echo "MEMCACHED-RESULT $r status $st get_hits $hits get_misses $misses curr_items $items"
