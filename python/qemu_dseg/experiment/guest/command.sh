dseg-window 1
@runner@ @command@ > /tmp/command.out 2>&1
st=$?
dseg-window 2
cat /tmp/command.out
r=failed; [ $st = 0 ] && r=ok
echo "COMMAND-RESULT $r status $st"
