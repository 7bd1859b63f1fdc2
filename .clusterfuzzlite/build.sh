#!/bin/bash -eu
# ClusterFuzzLite builds exactly what OSS-Fuzz builds: one script for both.
exec bash -eu "$SRC/cpvm/docker/oss-fuzz/build.sh" "$@"
