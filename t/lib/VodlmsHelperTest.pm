package VodlmsHelperTest;

# What the helper's suites (t/089 .. t/099, t/178) do around vodlms-helper,
# written once: files, SQL quoting, test clips, the videos rows and the
# queue's jobs, the helper's configuration, and the processes they start.
#
#   use VodlmsHelperTest qw(slurp write_file sq make_clip spawn wait_exit run_idle);
#
#   my $clip = make_clip("$src/lecture.mp4", duration => 10, size => '320x180');
#   my $log = run_idle(name => 'first', bin => $bin, config => "$tmp/helper.conf",
#                      log => "$tmp/first.log", timeout => 180);
#
# Every process started here (spawn) or handed over (track) is stopped at
# END (TERM, or $VodlmsHelperTest::END_SIGNAL) and reaped, only by the
# process that started it.

use strict;
use warnings;

use Exporter 'import';
use POSIX qw(:sys_wait_h);
use Test::More ();
use Time::HiRes qw(sleep time);

use VodlmsTest ();

our @EXPORT_OK = qw(slurp write_file spew sq ffmpeg_make make_clip
                    spawn track wait_exit run_idle
                    insert_video xadd_job video_row write_helper_conf);

our $END_SIGNAL = 'TERM';

my $OwnerPid = $$;
my %Running;

#---------------------------------------------------------------------------
# files and SQL
#---------------------------------------------------------------------------

# the bytes of a file; undef if it cannot be read
sub slurp {
    my $f = shift;
    open my $in, '<:raw', $f or return undef;
    local $/;
    return scalar <$in>;
}

# writes the bytes to a file (then chmod MODE, if given); the path
sub write_file {
    my ($path, $bytes, $mode) = @_;
    open my $out, '>:raw', $path or die "$path: $!";
    print $out $bytes;
    close $out or die "$path: $!";
    chmod $mode, $path if defined $mode;
    return $path;
}

# the same, under the name t/089 gives it
sub spew { write_file(@_) }

# a PostgreSQL string literal
sub sq { my $s = shift; $s =~ s/'/''/g; return "'$s'" }

#---------------------------------------------------------------------------
# clips
#---------------------------------------------------------------------------

# ffmpeg (from PATH) writing OUT from ARGS, quietly; dies if it fails; OUT
sub ffmpeg_make {
    my ($out, @args) = @_;
    system('ffmpeg', '-hide_banner', '-nostdin', '-loglevel', 'error', '-y', @args, $out)
        and die "ffmpeg could not make $out\n";
    return $out;
}

# a clip of a lavfi picture and a sine tone at PATH; its path.  Options:
# video (testsrc2), size (320x240), rate (25), duration (3 s), filter (more of
# the video's lavfi graph, ",hue=..."), freq (440), no_audio, and extra
# (more output options after the video codec's).  x264 ultrafast and AAC,
# or VP8 and Opus for a .webm
sub make_clip {
    my ($path, %o) = @_;
    my $video = $o{video} // 'testsrc2';
    my $size = $o{size} // '320x240';
    my $rate = $o{rate} // 25;
    my $secs = $o{duration} // 3;
    my $freq = $o{freq} // 440;
    my $webm = $path =~ /\.webm$/;
    my @in = ('-f', 'lavfi', '-i', "$video=size=$size:rate=$rate:duration=$secs" . ($o{filter} // ''));
    push @in, '-f', 'lavfi', '-i', "sine=frequency=$freq:sample_rate=48000:duration=$secs"
        unless $o{no_audio};
    my @v = $webm ? ('-c:v', 'libvpx', '-deadline', 'realtime') : ('-c:v', 'libx264', '-preset', 'ultrafast');
    my @a = ('-c:a', $webm ? 'libopus' : 'aac', '-shortest');
    return ffmpeg_make($path, @in, @v, @{ $o{extra} || [] }, $o{no_audio} ? () : @a);
}

#---------------------------------------------------------------------------
# the rows and the queue
#---------------------------------------------------------------------------

# a vodlms.videos row as the module's upload makes one: course-intro,
# "Test ID", status queued unless given; source and prefix if given
sub insert_video {
    my ($pg, $id, %o) = @_;
    my @cols = ('id', 'course_id', 'title', 'status');
    my @vals = (sq($id), sq('course-intro'), sq("Test $id"), sq($o{status} // 'queued'));
    for ([storage_prefix => 'prefix'], [source_location => 'source']) {
        my ($col, $opt) = @$_;
        next unless exists $o{$opt};
        push @cols, $col;
        push @vals, defined $o{$opt} ? sq($o{$opt}) : 'NULL';
    }
    $pg->psql("INSERT INTO vodlms.videos (" . join(', ', @cols) . ") VALUES (" . join(', ', @vals) . ")");
}

# a transcode job on the stream (vodlms:transcode) as the module queues
# one: video_id, source, then FIELDS (enqueued_at: now, in whole seconds,
# unless given); REDIS: a start_redis object or what redis_cmd takes.  The
# entry's id; dies if Redis refuses
sub xadd_job {
    my ($redis, $id, $source, @fields) = @_;
    my %f = @fields;
    push @fields, enqueued_at => int time unless exists $f{enqueued_at};
    my $e = VodlmsTest::redis_cmd($redis, 'XADD', 'vodlms:transcode', '*', 'video_id', $id,
                                  'source', $source, @fields);
    die "XADD: $e" if ref $e;
    return $e;
}

my %VideoCol = (status => 'status', prefix => 'storage_prefix', error => 'error',
                source => 'source_location', duration => 'duration_seconds',
                renditions => 'renditions', progress => 'progress_percent');

# the vodlms.videos row of ID: { FIELD => its text, '' for NULL } for each
# of FIELDS (status, prefix, error, source, duration, renditions, progress);
# no row: every field undef
sub video_row {
    my ($pg, $id, @fields) = @_;
    my @cols = map { $VideoCol{$_} // die "video_row: no field $_\n" } @fields;
    my $row = $pg->psql("SELECT " . join(" || '|' || ", map { "coalesce(${_}::text, '')" } @cols)
                        . " FROM vodlms.videos WHERE id = " . sq($id));
    my %v;
    @v{@fields} = split /\|/, $row, scalar @fields;
    return \%v;
}

#---------------------------------------------------------------------------
# the helper's configuration
#---------------------------------------------------------------------------

# writes FILE, a configuration of the helper: Redis (REDIS, a start_redis
# object) on 127.0.0.1, PostgreSQL (CONNINFO), ORIGIN, the suites' quick
# encodes (segment_duration 2, preset ultrafast, threads 2, audio_bitrate
# 64k, block_ms 200, log_level debug), then SETTINGS (name => value, in
# order; a name above given again changes its value there).  FILE
sub write_helper_conf {
    my ($file, %o) = @_;
    my @names = qw(redis_host redis_port pg_conninfo origin_dir segment_duration preset threads
                   audio_bitrate block_ms log_level);
    my %value = (redis_host => '127.0.0.1', redis_port => $o{redis}->port,
                 pg_conninfo => qq("$o{conninfo}"), origin_dir => $o{origin}, segment_duration => 2,
                 preset => 'ultrafast', threads => 2, audio_bitrate => '64k', block_ms => 200,
                 log_level => 'debug');
    my @settings = @{ $o{settings} || [] };
    while (my ($name, $v) = splice @settings, 0, 2) {
        push @names, $name unless exists $value{$name};
        $value{$name} = $v;
    }
    return write_file($file, join '', map { "$_ = $value{$_}\n" } @names);
}

#---------------------------------------------------------------------------
# processes
#---------------------------------------------------------------------------

# starts CMD with its stdout and stderr appended to LOG, with ENV's
# variables set (an undef value: removed) and in DIR if given; its pid
sub spawn {
    my (%o) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $env = $o{env} || {};
        defined $env->{$_} ? ($ENV{$_} = $env->{$_}) : delete $ENV{$_} for keys %$env;
        open STDOUT, '>>', $o{log} or die "$o{log}: $!";
        open STDERR, '>&', \*STDOUT or die $!;
        if (defined $o{dir}) { chdir $o{dir} or die "$o{dir}: $!" }
        exec @{ $o{cmd} } or POSIX::_exit(127);
    }
    return track($pid);
}

# a child of ours, forked elsewhere, to stop at END; its pid
sub track { $Running{$_[0]} = 1; return $_[0] }

# the exit code of PID, or undef if it did not exit within SECS (then
# killed, KILL, and reaped)
sub wait_exit {
    my ($pid, $secs) = @_;
    my $deadline = time + $secs;
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            delete $Running{$pid};
            return $? >> 8;
        }
        sleep 0.05;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
    delete $Running{$pid};
    return undef;
}

# runs the helper until the queue is idle: BIN --config CONFIG
# --exit-when-idle ARGS, ENV as for spawn, its output appended to LOG, for
# TIMEOUT seconds at the most (120); a test that it exits 0 (named "NAME:
# helper exits 0", or WHAT), its log shown if not.  The log
sub run_idle {
    my (%o) = @_;
    my $pid = spawn(log => $o{log}, env => $o{env},
                    cmd => [ $o{bin}, '--config', $o{config}, '--exit-when-idle', @{ $o{args} || [] } ]);
    my $rc = wait_exit($pid, $o{timeout} // 120);
    Test::More::is($rc, 0, $o{what} // "$o{name}: helper exits 0") or Test::More::diag(slurp($o{log}));
    return slurp($o{log}) // '';
}

END {
    if ($$ == $OwnerPid) {
        local $?;
        kill $END_SIGNAL, $_ for keys %Running;
        waitpid($_, 0) for keys %Running;
    }
}

1;
