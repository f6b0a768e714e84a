#!/bin/sh
# The transcoding ladder benchmark: one decode (the helper's one-ffmpeg
# command: split + scale + 5 x libx264 + HLS) against one ffmpeg per rung
# (each decoding the source again), on the same generated source, in the
# same run.  Prints the seconds of each and the ratio.  Not run by tests.
#
#   helper/bench/ladder.sh                 # 60 s 1080p25 testsrc2 + sine, preset veryfast
#   DURATION=20 PRESET=ultrafast THREADS=2 PARALLEL=1 helper/bench/ladder.sh
#
# DURATION  source length, seconds (60)     PRESET   libx264 preset (veryfast: the default)
# THREADS   ffmpeg -threads, 0 = auto (0)   SEG      segment/GOP seconds (6)
# PARALLEL  1: run the per-rung ffmpegs at the same time instead of one after another (0)
# KEEP      1: keep the outputs             BENCH_DIR  where to work (default: a new mktemp -d)
#
# (a) mirrors helper/ladder.c build_args() for a 1920x1080 25 fps source with
# audio and the default ladder (240p:400k .. 1080p:5000k); keep them in step.
set -eu

DURATION=${DURATION:-60}
PRESET=${PRESET:-veryfast}
THREADS=${THREADS:-0}
SEG=${SEG:-6}
PARALLEL=${PARALLEL:-0}
FPS=25
GOP=$((FPS * SEG))
FFMPEG=${FFMPEG:-ffmpeg}

if [ -n "${BENCH_DIR:-}" ]; then
    DIR=$BENCH_DIR
    mkdir -p "$DIR"
    # a directory we were given: remove only what we make in it
    [ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$DIR/a" "$DIR/b" "$DIR/source.mp4"' EXIT
else
    DIR=$(mktemp -d "${TMPDIR:-/tmp}/vodlms-ladder-bench.XXXXXX")
    [ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$DIR"' EXIT
fi

# name height width bitrate
RUNGS="240p 240 426 400000
360p 360 640 800000
480p 480 854 1400000
720p 720 1280 2800000
1080p 1080 1920 5000000"

now() { date +%s.%N; }
elapsed() { echo "$1 $2" | awk '{ printf "%.2f", $2 - $1 }'; }

echo "source: ${DURATION} s 1920x1080 ${FPS} fps testsrc2 + 440 Hz sine (x264 ultrafast, crf 18)"
$FFMPEG -hide_banner -nostdin -loglevel error -y \
    -f lavfi -i "testsrc2=size=1920x1080:rate=$FPS:duration=$DURATION" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$DURATION" \
    -c:v libx264 -preset ultrafast -crf 18 -g 250 -c:a aac -b:a 128k -shortest \
    "$DIR/source.mp4"

# ---- (a) one ffmpeg, one decode: the helper's command
A="$DIR/a"; mkdir -p "$A"
FC="[0:v]split=5[s0][s1][s2][s3][s4]"
MAPS="" BR="" VSM="" i=0
while read -r name h w br; do
    FC="$FC;[s$i]scale=$w:$h,setsar=1,format=yuv420p[v$i]"
    MAPS="$MAPS -map [v$i]"
    BR="$BR -b:v:$i $br -maxrate:v:$i $((br + br / 10)) -bufsize:v:$i $((br + br / 2))"
    VSM="$VSM${VSM:+ }v:$i,a:$i,name:$name"
    i=$((i + 1))
done <<RUNGS_EOF
$RUNGS
RUNGS_EOF
# shellcheck disable=SC2086  # MAPS and BR are word lists on purpose
set -- -hide_banner -nostdin -loglevel error -y -i "$DIR/source.mp4" \
    -filter_complex "$FC" $MAPS -map 0:a:0 -map 0:a:0 -map 0:a:0 -map 0:a:0 -map 0:a:0 \
    -c:v libx264 -preset "$PRESET" -profile:v high $BR \
    -g $GOP -keyint_min $GOP -sc_threshold 0 -force_key_frames "expr:gte(t,n_forced*$SEG)" \
    -c:a aac -b:a 128000 -ac 2 -ar 48000 -threads "$THREADS" \
    -f hls -hls_time "$SEG" -hls_playlist_type vod -hls_flags independent_segments \
    -hls_segment_type mpegts -hls_segment_filename "$A/%v/seg_%05d.ts" \
    -master_pl_name master.m3u8 -var_stream_map "$VSM" "$A/%v/index.m3u8"
echo "(a) $FFMPEG $*" | sed "s|$DIR|\$DIR|g"
t0=$(now)
$FFMPEG "$@"
t1=$(now)
TA=$(elapsed "$t0" "$t1")
echo "(a) one ffmpeg, one decode, 5 rungs: ${TA} s"

# ---- (b) one ffmpeg per rung: 5 decodes
B="$DIR/b"; mkdir -p "$B"
rung() {  # name height width bitrate
    mkdir -p "$B/$1"
    $FFMPEG -hide_banner -nostdin -loglevel error -y -i "$DIR/source.mp4" \
        -vf "scale=$3:$2,setsar=1,format=yuv420p" -map 0:v:0 -map 0:a:0 \
        -c:v libx264 -preset "$PRESET" -profile:v high \
        -b:v "$4" -maxrate "$(($4 + $4 / 10))" -bufsize "$(($4 + $4 / 2))" \
        -g $GOP -keyint_min $GOP -sc_threshold 0 -force_key_frames "expr:gte(t,n_forced*$SEG)" \
        -c:a aac -b:a 128000 -ac 2 -ar 48000 -threads "$THREADS" \
        -f hls -hls_time "$SEG" -hls_playlist_type vod -hls_flags independent_segments \
        -hls_segment_type mpegts -hls_segment_filename "$B/$1/seg_%05d.ts" "$B/$1/index.m3u8"
}
echo "(b) per rung: $FFMPEG -i \$DIR/source.mp4 -vf scale=W:H,setsar=1,format=yuv420p (same x264/aac/hls options) \$DIR/b/<rung>/index.m3u8$( [ "$PARALLEL" = 1 ] && echo ', all 5 at once' || echo ', one after another')"
t0=$(now)
if [ "$PARALLEL" = 1 ]; then
    pids=""
    while read -r name h w br; do
        rung "$name" "$h" "$w" "$br" & pids="$pids $!"
    done <<RUNGS_EOF
$RUNGS
RUNGS_EOF
    for p in $pids; do wait "$p"; done
else
    while read -r name h w br; do
        rung "$name" "$h" "$w" "$br"
    done <<RUNGS_EOF
$RUNGS
RUNGS_EOF
fi
t1=$(now)
TB=$(elapsed "$t0" "$t1")
echo "(b) one ffmpeg per rung, 5 decodes: ${TB} s"

echo "$TA $TB" | awk -v d="$DURATION" -v p="$PRESET" -v c="$(nproc)" '{
    printf "ladder: %s s of 1080p25, preset %s, %d cores: one-decode %.2f s, per-rung %.2f s, per-rung / one-decode = %.2fx\n",
           d, p, c, $1, $2, $2 / $1 }'
