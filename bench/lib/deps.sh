#!/bin/bash
# What the benchmarks need (HAProxy, nginx, h2load, gnuplot, openssl, python3):
# the project's one installer, scripts/deps.sh, in its bench mode.
exec "$(dirname "$0")/../../scripts/deps.sh" bench
