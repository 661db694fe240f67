run_in_region @region_mb@ @command@ &
spid=$!
serve @name@
# The host has asked the server to exit; its region is free after this.
wait $spid
