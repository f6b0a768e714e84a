#!/bin/sh
# The cost of the audio-only rendition and the storyboard (issue #23): the
# helper's one ffmpeg for the ladder alone, + the audio-only rendition,
# + the storyboard branch, + both, on the same generated source, in the same
# run, one after another.  Prints wall and CPU (user + system) seconds of
# each and the ratios to the ladder alone.  Not run by tests.
#
#   helper/bench/preview.sh                   # 60 s 1280x720 25 fps, 3 rungs, preset veryfast
#   DURATION=20 PRESET=ultrafast helper/bench/preview.sh
#
# DURATION  source length, seconds (60)     PRESET    libx264 preset (veryfast: the default)
# THREADS   ffmpeg -threads, 0 = auto (0)   SEG       segment/GOP seconds (6)
# EVERY     storyboard_interval (10)        WIDTH     storyboard_width (160)
# RUNS      runs of each command; the best is kept (1)
# KEEP      1: keep the outputs             BENCH_DIR where to work (default: a new mktemp -d)
#
# The commands mirror helper/ladder.c vh_ladder_args() (audio_only: one more
# 0:a:0 map, -b:a:<n>, "a:<n>,name:audio"; thumbnails: one more split
# branch fps,scale and a second image2 output of tiles) and
# vh_storyboard_run() (the tiles into sheets, timed with the run); keep them
# in step.
set -eu

DURATION=${DURATION:-60}
PRESET=${PRESET:-veryfast}
THREADS=${THREADS:-0}
SEG=${SEG:-6}
EVERY=${EVERY:-10}
WIDTH=${WIDTH:-160}
RUNS=${RUNS:-1}
FPS=25
GOP=$((FPS * SEG))
FFMPEG=${FFMPEG:-ffmpeg}
TIME=${TIME_BIN:-/usr/bin/time}

if [ -n "${BENCH_DIR:-}" ]; then
    DIR=$BENCH_DIR
    mkdir -p "$DIR"
    [ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$DIR/out" "$DIR/source.mp4" "$DIR/time"' EXIT
else
    DIR=$(mktemp -d "${TMPDIR:-/tmp}/vodlms-preview-bench.XXXXXX")
    [ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$DIR"' EXIT
fi
[ -x "$TIME" ] || { echo "needs GNU time at $TIME (apt-get install time)" >&2; exit 1; }

echo "source: ${DURATION} s 1280x720 ${FPS} fps testsrc2 + 440 Hz sine; ladder 240p,360p,720p;" \
     "preset $PRESET; storyboard ${WIDTH} px every ${EVERY} s, 10x10"
$FFMPEG -hide_banner -nostdin -loglevel error -y \
    -f lavfi -i "testsrc2=size=1280x720:rate=$FPS:duration=$DURATION" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$DURATION" \
    -c:v libx264 -preset ultrafast -crf 18 -g 250 -c:a aac -b:a 128k -shortest \
    "$DIR/source.mp4"

TH=$(( (WIDTH * 720 / 1280 + 1) / 2 * 2 ))

# run NAME AUDIO_ONLY THUMBS: prints "NAME wall cpu"
run() {
    name=$1 audio=$2 thumbs=$3
    out="$DIR/out/$name"
    rm -rf "$out"; mkdir -p "$out/thumbs" "$out/.tiles"
    n=3
    split=$n; [ "$thumbs" = 1 ] && split=$((n + 1))
    fc="[0:0]split=$split[s0][s1][s2]"
    [ "$thumbs" = 1 ] && fc="$fc[s3]"
    fc="$fc;[s0]scale=426:240,setsar=1,format=yuv420p[v0];[s1]scale=640:360,setsar=1,format=yuv420p[v1];[s2]scale=1280:720,setsar=1,format=yuv420p[v2]"
    [ "$thumbs" = 1 ] && fc="$fc;[s3]fps=1/$EVERY:round=up,scale=$WIDTH:$TH,setsar=1[sb]"
    amaps="-map 0:a:0 -map 0:a:0 -map 0:a:0" vsm="v:0,a:0,name:240p v:1,a:1,name:360p v:2,a:2,name:720p" abr=""
    if [ "$audio" = 1 ]; then
        amaps="$amaps -map 0:a:0" vsm="$vsm a:3,name:audio" abr="-b:a:3 64000"
    fi
    sb=""
    [ "$thumbs" = 1 ] && sb="-map [sb] -c:v mjpeg -q:v 2 -an -f image2 -start_number 0 $out/.tiles/tile_%06d.jpg"
    best_wall="" best_cpu=""
    i=0
    while [ $i -lt "$RUNS" ]; do
        # shellcheck disable=SC2086  # word lists on purpose
        "$TIME" -f "%e %U %S" -o "$DIR/time" $FFMPEG -hide_banner -nostdin -loglevel error -y \
            -i "$DIR/source.mp4" -filter_complex "$fc" \
            -map '[v0]' -map '[v1]' -map '[v2]' $amaps \
            -c:v libx264 -preset "$PRESET" -profile:v high \
            -b:v:0 400000 -maxrate:v:0 440000 -bufsize:v:0 600000 \
            -b:v:1 800000 -maxrate:v:1 880000 -bufsize:v:1 1200000 \
            -b:v:2 2800000 -maxrate:v:2 3080000 -bufsize:v:2 4200000 \
            -g $GOP -keyint_min $GOP -sc_threshold 0 -force_key_frames "expr:gte(t,n_forced*$SEG)" \
            -c:a aac -b:a 128000 -ac 2 -ar 48000 $abr -threads "$THREADS" \
            -f hls -hls_time "$SEG" -hls_playlist_type vod -hls_flags independent_segments \
            -hls_segment_type mpegts -hls_segment_filename "$out/%v/seg_%05d.ts" \
            -master_pl_name master.m3u8 -var_stream_map "$vsm" "$out/%v/index.m3u8" $sb
        set -- $(tail -1 "$DIR/time")
        wall=$1 cpu=$(echo "$2 $3" | awk '{ printf "%.2f", $1 + $2 }')
        if [ "$thumbs" = 1 ]; then
            "$TIME" -f "%e %U %S" -o "$DIR/time" $FFMPEG -hide_banner -nostdin -loglevel error -y \
                -protocol_whitelist file -f image2 -framerate 1 -start_number 0 \
                -i "file:$out/.tiles/tile_%06d.jpg" -vf tile=10x10 -c:v mjpeg -q:v 5 \
                -f image2 -start_number 0 "$out/thumbs/sprite_%03d.jpg"
            set -- $(tail -1 "$DIR/time")
            wall=$(echo "$wall $1" | awk '{ printf "%.2f", $1 + $2 }')
            cpu=$(echo "$cpu $2 $3" | awk '{ printf "%.2f", $1 + $2 + $3 }')
        fi
        if [ -z "$best_wall" ] || awk "BEGIN { exit !($wall < $best_wall) }"; then
            best_wall=$wall best_cpu=$cpu
        fi
        i=$((i + 1))
    done
    echo "$name $best_wall $best_cpu"
}

{
    run ladder 0 0
    run audio_only 1 0
    run storyboard 0 1
    run both 1 1
} > "$DIR/results"
awk 'NR == 1 { w = $2; c = $3 }
     { printf "%-11s wall %7.2f s (%.3fx)   cpu %7.2f s (%.3fx)\n", $1, $2, $2 / w, $3, $3 / c }' \
    "$DIR/results"
ls "$DIR/out/both/thumbs" | sed 's/^/  storyboard: /'
