#!/bin/bash
# --max-sessions counts the sessions that were created, not the requests
# that tried: a new visitor's write refused at its commit (413: a value past
# --max-value-bytes) creates nothing, so it must not use up the cap. Before,
# each such 413 counted as a session until the collector's next count, and a
# client could keep the store "full" for every new visitor with requests
# that store nothing.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
restart --max-sessions 3 --max-value-bytes 16
start_nginx a
sessions() { sql 'SELECT count(*) FROM sessions'; }

long=$(head -c 17 /dev/zero | tr '\0' x)
for i in 1 2 3 4 5; do
  rm -f "$JAR"
  get "/set?k=$long"
  expect_status 413 "a new visitor's value one byte past --max-value-bytes ($i)"
done
expect_eq "$(sessions)" 0 "sessions stored by the refused writes"
for i in 1 2 3; do
  rm -f "$JAR"
  get "/set?k=$i"
  expect_status 200 "new visitor $i of the cap's 3, after the refused writes"
done
expect_eq "$(sessions)" 3 "sessions stored"
rm -f "$JAR"
get "/set?k=4"
expect_status 503 "a fourth new visitor, past --max-sessions 3"
