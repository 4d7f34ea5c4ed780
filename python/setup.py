"""Builds tokenmill._tokenmill against libtokenmill, found (in this order) in
the build tree named by TOKENMILL_BUILD_DIR (with TOKENMILL_SRC_DIR for the
headers, default: its parent's include/), in the tree this folder sits in
when it has been built (../.libs/libtokenmill.so), or through pkg-config
(an installed tokenmill: ./configure && make && make install)."""
import os
import shlex
import subprocess
import sys

from setuptools import Extension, setup

here = os.path.dirname(os.path.abspath(__file__))


def from_tree(build, src):
    lib = os.path.join(build, ".libs")
    if not os.path.exists(os.path.join(lib, "libtokenmill.so")):
        return None
    return dict(include_dirs=[os.path.join(src, "include")], library_dirs=[lib], runtime_library_dirs=[lib],
                libraries=["tokenmill"])


def find():
    b = os.environ.get("TOKENMILL_BUILD_DIR")
    if b:
        cfg = from_tree(os.path.abspath(b), os.path.abspath(os.environ.get("TOKENMILL_SRC_DIR", b)))
        if not cfg:
            sys.exit("TOKENMILL_BUILD_DIR=%s holds no .libs/libtokenmill.so (run make there)" % b)
        return cfg
    cfg = from_tree(os.path.dirname(here), os.path.dirname(here))
    if cfg:
        return cfg
    try:
        cflags = shlex.split(subprocess.check_output(["pkg-config", "--cflags", "tokenmill"], text=True))
        libs = shlex.split(subprocess.check_output(["pkg-config", "--libs", "tokenmill"], text=True))
    except (OSError, subprocess.CalledProcessError):
        sys.exit("libtokenmill not found: build it (./configure && make) in the tree above this folder, "
                 "set TOKENMILL_BUILD_DIR to a build tree, or install it so that pkg-config finds tokenmill")
    return dict(include_dirs=[f[2:] for f in cflags if f.startswith("-I")],
                library_dirs=[f[2:] for f in libs if f.startswith("-L")],
                runtime_library_dirs=[f[2:] for f in libs if f.startswith("-L")],
                libraries=[f[2:] for f in libs if f.startswith("-l")])


cfg = find()
setup(ext_modules=[Extension("tokenmill._tokenmill", ["tokenmill_py.c"], extra_compile_args=["-std=c11", "-O2"],
                             extra_link_args=["-pthread"], **cfg)])
