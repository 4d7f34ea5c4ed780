#!/usr/bin/env bash
# python.sh - the Python package (python/): `pip install` of a copy of the
# folder against this build's libtokenmill, then its pytest suite
# (python/tests). Skips (77) without pytest, setuptools or Python's headers.
. "$(dirname "$0")/lib.sh"
python3 -c 'import pytest, setuptools' 2>/dev/null || skip "python3 modules pytest and setuptools needed (pip install pytest setuptools wheel)"
inc=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
[ -f "$inc/Python.h" ] || skip "Python headers missing ($inc/Python.h; apt-get install python3-dev)"
BUILD=$(cd "$(dirname "$TKM_BIN")" && pwd)
[ -f "$BUILD/.libs/libtokenmill.so" ] || skip "no shared libtokenmill in $BUILD/.libs (configured with --disable-shared?)"
# a sanitizer build's library needs its runtime loaded first, which python3 is not built with
if ldd "$BUILD/.libs/libtokenmill.so" 2>/dev/null | grep -q 'lib[at]san\|libubsan'; then
  skip "libtokenmill is a sanitizer build (--enable-asan/--enable-ubsan): python3 cannot load it"
fi
cp -r "$TKM_SRCDIR/python" "$TMP/py"
chmod -R u+w "$TMP/py"
export TOKENMILL_BUILD_DIR=$BUILD TOKENMILL_SRC_DIR=$TKM_SRCDIR
# pip without build isolation (no network needed); else setuptools directly
if (cd "$TMP/py" && python3 -m pip install -q --no-build-isolation --no-deps --target "$TMP/site" . > "$TMP/pip.log" 2>&1); then
  how="pip install"
elif (cd "$TMP/py" && python3 setup.py -q build_ext --build-lib "$TMP/site" --build-temp "$TMP/bt" > "$TMP/setup.log" 2>&1 \
      && cp -r tokenmill/__init__.py "$TMP/site/tokenmill/"); then
  how="setup.py build_ext (pip failed: $(tail -1 "$TMP/pip.log"))"
else
  cat "$TMP/pip.log" "$TMP/setup.log"
  fail "the extension does not build"
  finish
fi
cd "$TMP"
if PYTHONPATH="$TMP/site" python3 -m pytest -q -p no:cacheprovider --basetemp "$TMP/pytest" "$TMP/py/tests" > "$TMP/pytest.log" 2>&1; then
  pass "python package ($how): $(tail -1 "$TMP/pytest.log")"
else
  cat "$TMP/pytest.log"
  fail "pytest python/tests"
fi
finish
