run_in_region @region_mb@ @command@ &
spid=$!
serve @name@
kill $spid; wait $spid
