#!/bin/bash
# The Makefile's build says what it does when there is something to do (the
# first build takes minutes): a line when it configures a new tree, one with
# how far the build is; nothing when everything is built already; cmake's
# whole log, the compiler's error in it, when the build fails. Run on a
# project of one file, with the Makefile as it is (its deps step stubbed).
. "$SESSIOND_SRC/tests/e2e/lib.sh"
P="$DIR/project"
mkdir -p "$P/scripts"
printf '#!/bin/sh\nexit 0\n' >"$P/scripts/install-deps"
chmod 755 "$P/scripts/install-deps"
printf 'cmake_minimum_required(VERSION 3.22)\nproject(tiny CXX)\nadd_executable(tiny tiny.cc)\n' >"$P/CMakeLists.txt"
echo 'int main() { return 0; }' >"$P/tiny.cc"
# mk: make build on the project, its output in $DIR/out.
mk() { make -s --no-print-directory -f "$SESSIOND_SRC/Makefile" -C "$P" build JOBS=1 >"$DIR/out" 2>&1; }

mk || fail "the first build failed: $(cat "$DIR/out")"
grep -qx "configuring build/ (cmake)" "$DIR/out" || fail "the first build did not say it configures: $(cat "$DIR/out")"
grep -qE "^building build/ \(1 jobs, log build/build.log\):.* 100%, done in [0-9]+s$" "$DIR/out" ||
  fail "the first build did not say how far it is: $(cat "$DIR/out")"
[ "$(wc -l <"$DIR/out")" -eq 2 ] || fail "the first build said more than two lines: $(cat "$DIR/out")"

mk || fail "a build with nothing to do failed: $(cat "$DIR/out")"
[ ! -s "$DIR/out" ] || fail "a build with nothing to do said: $(cat "$DIR/out")"

echo 'int main() { return undeclared_name; }' >"$P/tiny.cc"
! mk || fail "a build of a broken file succeeded"
grep -q "undeclared_name" "$DIR/out" || fail "a failed build did not show the compiler's error: $(cat "$DIR/out")"
exit 0
