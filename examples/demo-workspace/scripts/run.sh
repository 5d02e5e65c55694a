#!/usr/bin/env sh
set -eu
cd "$(dirname "$0")/.."
exec npx tsx src/index.ts "$@"
