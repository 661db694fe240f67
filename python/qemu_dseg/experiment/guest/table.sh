t=; [ $region = 1 ] && t=--region
/bin/@name@ $t --window @size_mb@ @ops@ \
    @seed@ > /tmp/@name@.out
st=$?
cat /tmp/@name@.out
if [ $st = 0 ] && grep -q '^@tag@ .* checksum ' /tmp/@name@.out; then
    echo "@tag@-RESULT ok $(sed -n 's/.*checksum //p' /tmp/@name@.out)"
else
    echo "@tag@-RESULT failed status $st"
fi
