#!/usr/bin/env bash
# A server on this machine, two users, remote making, publishing and a steered feed — all on the built-in
# random-weight models (the videos are noise; the path is the real one). Run in an empty folder.
set -euo pipefail
export SORA_HOME=${SORA_HOME:-$PWD/server-home}          # the server's state (users, queue, media, library)
port=${PORT:-8765}
url=http://127.0.0.1:$port
ana=$(sora server user add ana)                          # keys are printed once, stored only as hashes
ben=$(sora server user add ben)
sora serve --port "$port" --quiet &
server=$!
trap 'kill $server' EXIT
until curl -sf "$url/health" > /dev/null; do sleep 1; done

export SORA_HOME=$PWD/client-home                        # the client's own library and keys
SORA_API_KEY=$ana sora generate "a paper boat on a pond" --server "$url" --size 256x256 --steps 2 -o boat.mp4
SORA_API_KEY=$ana sora feed publish boat.mp4 --server "$url"
SORA_API_KEY=$ana sora generate "a rocket launch at night" --server "$url" --size 256x256 --steps 2 -o rocket.mp4
SORA_API_KEY=$ana sora feed publish rocket.mp4 --server "$url"
SORA_API_KEY=$ben sora feed follow @ana --server "$url"
SORA_API_KEY=$ben sora feed browse --server "$url" --steer "more space, no boats" --sheet feed.png
sora verify-provenance boat.mp4 rocket.mp4
