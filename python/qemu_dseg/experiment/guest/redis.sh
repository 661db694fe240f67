redis_ok=1
run_in_region @region_mb@ /bin/redis-server --port 6379 --save '' \
    --appendonly no --logfile /tmp/redis.log &
rpid=$!
wait_for redis-cli ping || redis_ok=0
dseg-window 1
redis-benchmark -q -t set,get -n @requests@ -r @keys@ \
    -d @value@ -P 16 > /tmp/bench.out 2>&1
st=$?
dseg-window 2
tr '\r' '\n' < /tmp/bench.out | grep -E '^(SET|GET): [0-9.]+ requests' \
    > /tmp/bench.sum
cat /tmp/bench.sum
[ "$st" = 0 ] && [ "$(wc -l < /tmp/bench.sum)" = 2 ] || redis_ok=0
grep -qi error /tmp/bench.out && redis_ok=0
redis-cli set qemu-dseg-check 42 > /dev/null
[ "$(redis-cli get qemu-dseg-check)" = 42 ] || redis_ok=0
keys=$(redis-cli dbsize)
redis-cli shutdown nosave > /dev/null 2>&1; wait $rpid
r=failed; [ $redis_ok = 1 ] && r=ok
echo "REDIS-RESULT $r status $st keys $keys"
