#!/bin/sh
# Live three-rung HLS ladder (fMP4, 1 s segments) from ffmpeg test sources, for
# player ABR checks without the origin.
#
# Usage: player/test/ladder-fixture.sh DIR [SECONDS]
#
# Writes DIR/master.m3u8 and DIR/v0..v2/ (index.m3u8, init_N.mp4, N.m4s) in
# real time for SECONDS (default 600), then exits. Rungs: v0 640x360 4000k,
# v1 480x270 1500k, v2 320x180 400k, each with AAC 64k muxed in (ffmpeg 5's
# audio groups add an audio-only variant to the master playlist, which hls.js
# would have to filter out). hls.js sorts levels by bitrate, so its level 0
# is v2.
# Runs in the foreground: start it with `&` and kill it when done.
#
# The rates are CBR with filler (nal-hrd=cbr) so that each rung really costs
# what its BANDWIDTH says: hls.js measures fragment loads, and a top rung that
# came out at a fraction of its nominal rate would not need a switch down.
# Sizes stay small because the test machines share two cores with Rust builds.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 DIR [SECONDS]" >&2
  exit 2
fi
dir=$1
seconds=${2:-600}
mkdir -p "$dir/v0" "$dir/v1" "$dir/v2"
cd "$dir"

# One keyframe a second (-g 30, no scene cuts) so every rung cuts 1 s segments
# at the same frames, as the origin's ladder does.
rung() { # index bitrate(k)
  echo "-c:v:$1 libx264 -b:v:$1 ${2}k -maxrate:v:$1 ${2}k -bufsize:v:$1 $(($2 / 2))k"
}
exec ffmpeg -nostdin -hide_banner -loglevel error \
  -re -f lavfi -i "testsrc2=size=640x360:rate=30" \
  -re -f lavfi -i "sine=frequency=440:sample_rate=48000" \
  -t "$seconds" \
  -filter_complex "[0:v]split=3[a][b][c];[b]scale=480:270[b2];[c]scale=320:180[c2]" \
  -map "[a]" -map "[b2]" -map "[c2]" -map 1:a -map 1:a -map 1:a \
  $(rung 0 4000) $(rung 1 1500) $(rung 2 400) \
  -preset ultrafast -tune zerolatency -pix_fmt yuv420p -x264-params nal-hrd=cbr \
  -g 30 -keyint_min 30 -sc_threshold 0 \
  -c:a aac -b:a 64k \
  -f hls -hls_time 1 -hls_list_size 10 -hls_segment_type fmp4 \
  -hls_flags delete_segments+independent_segments+temp_file \
  -hls_segment_filename 'v%v/%d.m4s' \
  -master_pl_name master.m3u8 \
  -var_stream_map "v:0,a:0 v:1,a:1 v:2,a:2" \
  'v%v/index.m3u8'
