# The database side of coverage (issue #19): sql/migrations/0010_coverage.sql.
#
#   * the SQL functions say what core/vodlms_coverage.c says, to the ms: the
#     core is the oracle (t/unit/coverage_cases prints its answers for
#     thousands of pseudo-random bitmaps and spans, PostgreSQL is asked the
#     same in one query per kind);
#   * coverage_or is the union whatever the lengths (idempotent, commutative,
#     associative; NULL is empty), and coverage_union its aggregate;
#   * the flush the module runs (one INSERT .. ON CONFLICT per batch, names
#     qualified, a search_path without the schema) merges replays and two
#     nodes to the same bits and completes once the union reaches the
#     fraction;
#   * the upgrade gives rows from before 0010 the documented estimate, a second
#     run applies nothing, and --schema other works the same;
#   * video_stats and video_audience count known bitmaps to the exact number,
#     for a video without viewers too.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use POSIX ();
use Test::More;

my $repo = "$FindBin::Bin/..";
my $build = (defined $ENV{VODLMS_BUILD_DIR} && length $ENV{VODLMS_BUILD_DIR})
          ? $ENV{VODLMS_BUILD_DIR} : "$repo/build";
my $cases = "$build/unit/coverage_cases";
my $tmp = tempdir('vodlms-t068-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $tmp;

my $pg = start_pg();

sub conninfo { (my $ci = $pg->conninfo) =~ s/dbname=vodlms/dbname=$_[0]/; $ci }

# a command's exit code and its stdout and stderr together
sub run_cmd {
    my @cmd = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
        exec @cmd or POSIX::_exit(127);
    }
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    return ($? >> 8, $out);
}

# psql on one database (the SQL as one argument); dies when it fails
sub sql {
    my ($db, $q) = @_;
    my ($rc, $out) = run_cmd('psql', conninfo($db), '-X', '-qAt', '-v', 'ON_ERROR_STOP=1',
                             '-c', $q);
    die "psql failed on $db: $out\n$q\n" if $rc;
    chomp $out;
    return $out;
}

# the same for a statement that must fail: its error text
sub sql_error {
    my ($db, $q) = @_;
    my ($rc, $out) = run_cmd('psql', conninfo($db), '-X', '-qAt', '-v', 'ON_ERROR_STOP=1',
                             '-c', $q);
    return $rc ? $out : "succeeded\n";
}

# a file of SQL (psql's \copy included)
sub sql_file {
    my ($db, $text) = @_;
    my $f = "$tmp/script.sql";
    open my $fh, '>', $f or die "$f: $!";
    print $fh $text;
    close $fh;
    my ($rc, $out) = run_cmd('psql', conninfo($db), '-X', '-qAt', '-v', 'ON_ERROR_STOP=1',
                             '-f', $f);
    die "psql -f failed on $db: $out\n" if $rc;
    chomp $out;
    return $out;
}

# ------------------------------------------------- the core as the oracle

# the oracle's answers in a file for \copy; a missing program fails
sub oracle {
    my ($kind, $n, $seed) = @_;
    my $file = "$tmp/$kind.tsv";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', $file or POSIX::_exit(126);
        exec $cases, $kind, $n, $seed or POSIX::_exit(127);
    }
    waitpid $pid, 0;
    is($?, 0, "t/unit/coverage_cases $kind $n $seed runs ($cases)")
        or BAIL_OUT("no oracle: build it with make -C t/unit BUILD=$build");
    return $file;
}

my $n_bitmaps = 4000;
my $file = oracle('bitmaps', $n_bitmaps, 68);
my @got = split /\|/, sql_file('vodlms', <<"SQL");
SET search_path = pg_catalog;
CREATE TEMP TABLE c (id serial, d numeric, a text, covered bigint, first bigint, k int,
                     t text, covered_k bigint, first_k bigint, b text, u text);
\\copy c (d, a, covered, first, k, t, covered_k, first_k, b, u) FROM '$file'
SELECT count(*),
       count(*) FILTER (WHERE vodlms.coverage_seconds(a::varbit, d) * 1000 <> covered),
       count(*) FILTER (WHERE vodlms.coverage_first_unwatched(a::varbit, d) * 1000 <> first),
       count(*) FILTER (WHERE vodlms.coverage_seconds(substring(a::varbit FROM 1 FOR k), d) * 1000
                              <> covered_k),
       count(*) FILTER (WHERE vodlms.coverage_first_unwatched(substring(a::varbit FROM 1 FOR k), d) * 1000
                              <> first_k),
       count(*) FILTER (WHERE vodlms.coverage_seconds(a::varbit || B'1111', d) * 1000 <> covered
                           OR vodlms.coverage_first_unwatched(a::varbit || B'1111', d) * 1000 <> first),
       count(*) FILTER (WHERE vodlms.coverage_or(a::varbit, b::varbit) IS DISTINCT FROM u::varbit),
       count(*) FILTER (WHERE vodlms.coverage_or(b::varbit, a::varbit) IS DISTINCT FROM u::varbit),
       (SELECT count(*) FROM c, (VALUES (0.5), (0.9), (0.95), (1)) f(f)
         WHERE vodlms.coverage_complete(a::varbit, d, f) <> (covered >= f * round(d * 1000))),
       count(*) FILTER (WHERE length(a::varbit) <> 4 * ceil(vodlms.coverage_bits(d) / 4.0)),
       count(*) FILTER (WHERE vodlms.coverage_hex(a::varbit) <> a),
       count(*) FILTER (WHERE (k > 0 AND pg_catalog.bit(vodlms.coverage_hex(substring(a::varbit FROM 1 FOR k))::varbit,
                                                        k, true)::varbit <> substring(a::varbit FROM 1 FOR k))
                           OR length(vodlms.coverage_hex(substring(a::varbit FROM 1 FOR k))) <> 1 + (k + 3) / 4
                           OR bit_count(vodlms.coverage_hex(substring(a::varbit FROM 1 FOR k))::varbit)
                              <> bit_count(substring(a::varbit FROM 1 FOR k))),
       count(DISTINCT d), count(*) FILTER (WHERE covered > 0),
       count(*) FILTER (WHERE d > 86400), count(*) FILTER (WHERE round(d * 1000) % 5000 = 0),
       count(*) FILTER (WHERE length(a) <> length(b)),
       count(*) FILTER (WHERE k < vodlms.coverage_bits(d) AND covered_k < covered)
  FROM c;
SQL
my ($total, @bad) = splice @got, 0, 12;
my ($distinct, $some, $long, $whole, $unequal, $cut) = @got;
is($total, $n_bitmaps, "every bitmap of the oracle was read");
my @what = ('coverage_seconds = covered_ms / 1000',
            'coverage_first_unwatched = first_unwatched_ms / 1000',
            'coverage_seconds of a bitmap cut at k bits (shorter than the video)',
            'coverage_first_unwatched of a bitmap cut at k bits',
            'bits past the video (4 more set) change nothing',
            'coverage_or(a, b) = the core\'s union in a bitmap of the longer length',
            'coverage_or(b, a) = the same',
            'coverage_complete(f) = covered_ms >= f * duration_ms, for f of .5, .9, .95 and 1',
            'the core\'s hex is coverage_bits() rounded up to 4 bits',
            'coverage_hex() writes the core\'s hex',
            'coverage_hex() of a bitmap cut at k bits: k rounded up to 4, the extra bits 0');
for my $i (0 .. $#what) {
    is($bad[$i], 0, "core vs SQL, $n_bitmaps cases: $what[$i]");
}
# the cases are worth something: the test would see a difference in them
cmp_ok($distinct, '>', $n_bitmaps / 2, 'the cases have many durations');
cmp_ok($some, '>', $n_bitmaps / 3, 'many cases have some coverage');
cmp_ok($long, '>', 100, 'many are longer than the 24 h tracked');
cmp_ok($whole, '>', 100, 'many are whole numbers of parts');
cmp_ok($unequal, '>', $n_bitmaps / 2, 'most unions are of different lengths');
cmp_ok($cut, '>', 100, 'many cuts drop covered parts');

my $n_spans = 4000;
$file = oracle('spans', $n_spans, 68);
is(sql_file('vodlms', <<"SQL"), "$n_spans|0|0", "core vs SQL, $n_spans spans: coverage_span marks what one run marks, coverage_bits() long");
SET search_path = pg_catalog;
CREATE TEMP TABLE s (d numeric, f bigint, t bigint, h text);
\\copy s FROM '$file'
SELECT count(*),
       count(*) FILTER (WHERE rpad(vodlms.coverage_span(d, f / 1000.0, t / 1000.0)::text,
                                   length(h::varbit), '0') <> h::varbit::text),
       count(*) FILTER (WHERE length(vodlms.coverage_span(d, f / 1000.0, t / 1000.0))
                              <> vodlms.coverage_bits(d))
  FROM s;
SQL

# ------------------------------------------------- coverage_or, coverage_union

my ($laws) = (split /\n/, sql('vodlms', q{
    SET search_path = pg_catalog;
    SELECT setseed(0.068);
    WITH r AS (
        SELECT i, (SELECT coalesce(string_agg(CASE WHEN random() < 0.4 THEN '1' ELSE '0' END, ''), '')
                     FROM generate_series(1, (random() * 70)::int + i * 0)) AS s
          FROM generate_series(1, 1500) i
    ), v AS (SELECT i, s::varbit AS x FROM r),
    t AS (SELECT a.x AS a, b.x AS b, c.x AS c
            FROM v a JOIN v b ON b.i = a.i + 500 JOIN v c ON c.i = a.i + 1000)
    SELECT count(*),
           count(*) FILTER (WHERE vodlms.coverage_or(a, a) <> a),
           count(*) FILTER (WHERE vodlms.coverage_or(a, b) <> vodlms.coverage_or(b, a)),
           count(*) FILTER (WHERE vodlms.coverage_or(vodlms.coverage_or(a, b), c)
                                  <> vodlms.coverage_or(a, vodlms.coverage_or(b, c))),
           count(*) FILTER (WHERE length(vodlms.coverage_or(a, b)) <> greatest(length(a), length(b))),
           count(*) FILTER (WHERE substring(vodlms.coverage_or(a, b) FROM 1 FOR length(a))
                                  <> a | substring(b || repeat('0', length(a))::varbit
                                                   FROM 1 FOR length(a))),
           count(*) FILTER (WHERE vodlms.coverage_or(a, NULL) <> a OR vodlms.coverage_or(NULL, a) <> a
                               OR vodlms.coverage_or(a, B'') <> a),
           count(*) FILTER (WHERE (SELECT vodlms.coverage_union(x) FROM (VALUES (a), (NULL), (b), (c)) u(x))
                                  <> vodlms.coverage_or(vodlms.coverage_or(a, b), c)),
           count(*) FILTER (WHERE length(a) <> length(b)),
           count(*) FILTER (WHERE bit_count(a) > 0 AND bit_count(b) > 0)
      FROM t}))[-1];
my @laws = split /\|/, $laws;
is(join('|', @laws[0 .. 7]), '500|0|0|0|0|0|0|0',
   'coverage_or on 500 random triples of lengths 0..70: idempotent, commutative, associative, '
   . 'as long as the longer, a | b on the common part, NULL and B\'\' are empty, coverage_union folds it');
cmp_ok($laws[8], '>', 400, '... most pairs of different lengths');
cmp_ok($laws[9], '>', 400, '... most with bits set in both');

is(sql('vodlms', q{
    SET search_path = pg_catalog;
    SELECT vodlms.coverage_or(NULL, NULL) = B'', vodlms.coverage_or(B'', B'') = B'',
           vodlms.coverage_or(B'1', B'0001'), vodlms.coverage_or(B'0', B'1000'),
           (SELECT vodlms.coverage_union(x) = B'' FROM (SELECT B'1'::varbit WHERE false) u(x)),
           (SELECT vodlms.coverage_union(x) FROM (VALUES (NULL::varbit), (NULL)) u(x)) = B''}),
   't|t|1001|1000|t|t',
   'coverage_or pads the shorter with 0 on the right; NULL and nothing are empty, never NULL');

is(sql('vodlms', q{
    SET search_path = pg_catalog;
    SELECT vodlms.coverage_bits(NULL), vodlms.coverage_bits(0), vodlms.coverage_bits(0.0004),
           vodlms.coverage_bits(0.0005), vodlms.coverage_bits(5), vodlms.coverage_bits(5.0004),
           vodlms.coverage_bits(5.0005), vodlms.coverage_bits(86400), vodlms.coverage_bits(90000),
           vodlms.coverage_bits('NaN'), vodlms.coverage_bits('Infinity'), vodlms.coverage_bits(-5)}),
   '0|0|0|1|1|1|2|17280|17280|0|0|0',
   'coverage_bits: the duration to the ms, 5 s a bit, at most 17280, 0 for no duration');

is(sql('vodlms', q{
    SET search_path = pg_catalog;
    SELECT vodlms.coverage_seconds(B'111', 12.5), vodlms.coverage_seconds(B'101', 12.5),
           vodlms.coverage_seconds(B'1', NULL), vodlms.coverage_seconds(NULL, 12.5),
           vodlms.coverage_seconds(B'1', 0), vodlms.coverage_seconds(B'1', -1),
           vodlms.coverage_first_unwatched(B'111', 12.5), vodlms.coverage_first_unwatched(B'110', 12.5),
           vodlms.coverage_first_unwatched(B'', 12.5), vodlms.coverage_first_unwatched(NULL, NULL),
           vodlms.coverage_complete(B'111', 12.5, 1), vodlms.coverage_complete(B'110', 12.5, 0.8),
           vodlms.coverage_complete(B'110', 12.5, 0.81), vodlms.coverage_complete(B'111', 12.5, NULL),
           vodlms.coverage_complete(B'111', 12.5, 0), vodlms.coverage_complete(B'111', NULL, 0.5),
           vodlms.coverage_complete(B'111', 0, 0.5), vodlms.coverage_complete(NULL, 12.5, 0.5),
           vodlms.coverage_complete(vodlms.coverage_span(100000, 0, 100000), 100000, 0.86),
           vodlms.coverage_complete(vodlms.coverage_span(100000, 0, 100000), 100000, 0.87)}),
   '12.500|7.500|0|0.000|0|0|12.500|10.000|0.000|0|t|t|f|f|f|f|f|f|t|f',
   'coverage_seconds, coverage_first_unwatched and coverage_complete on the edges '
   . '(a video over 24 h completes only up to 86400 / duration)');

# ------------------------------------------------- what the table takes

sql('vodlms', q{INSERT INTO vodlms.videos (id, course_id, title, status, storage_prefix, duration_seconds)
                VALUES ('v68-flush', 'c68', 'Flushed', 'ready', 'hls/v68-flush/', 22.5)});
like(sql_error('vodlms', q{INSERT INTO vodlms.watch_progress (user_id, video_id, coverage)
                           VALUES ('1001', 'v68-flush', repeat('1', 17281)::varbit)}),
     qr/watch_progress_coverage_length/, 'a bitmap of 17281 bits is refused');
like(sql_error('vodlms', q{INSERT INTO vodlms.watch_progress (user_id, video_id, coverage)
                           VALUES ('1001', 'v68-flush', NULL)}),
     qr/null value in column "coverage"/, 'a NULL bitmap is refused');
for my $f ('0', '-0.5', '1.0001', "'NaN'") {
    like(sql_error('vodlms', qq{INSERT INTO vodlms.watch_progress (user_id, video_id, complete_fraction)
                                VALUES ('1001', 'v68-flush', $f)}),
         qr/watch_progress_complete_fraction_range/, "complete_fraction $f is refused");
}
is(sql('vodlms', q{INSERT INTO vodlms.watch_progress (user_id, video_id, coverage, complete_fraction)
                   VALUES ('1001', 'v68-flush', repeat('1', 17280)::varbit, 1) RETURNING length(coverage);
                   DELETE FROM vodlms.watch_progress WHERE video_id = 'v68-flush'}),
   '17280', '17280 bits and a fraction of 1 are taken');
is(sql('vodlms', q{INSERT INTO vodlms.watch_progress (user_id, video_id) VALUES ('1001', 'v68-flush')
                   RETURNING coverage = B'', complete_fraction IS NULL;
                   DELETE FROM vodlms.watch_progress WHERE video_id = 'v68-flush'}),
   't|t', 'a row written without them (a flush of a site\'s own query) has no bitmap and no fraction');

# ------------------------------------------------- the module's flush

# the statement the module runs for a batch: $9 the bitmaps as the core's
# hex ('{x...,NULL}' is a varbit[] as it is), $10 the fraction in force
# (NULL for an entry without a bitmap); completion when the union of what
# the database has and what comes reaches the fraction of the duration
my $flush = q{
  PREPARE flush(text[], text[], numeric[], numeric[], numeric[], numeric[], float8[], numeric[],
                varbit[], numeric[]) AS
  INSERT INTO vodlms.watch_progress AS wp (user_id, video_id, position_seconds, max_position_seconds,
              duration_seconds, watched_seconds, completed_at, played_seconds, coverage,
              complete_fraction)
  SELECT b.u, b.v, b.p, b.m, b.d, b.w,
         coalesce(CASE WHEN b.c > 0 THEN to_timestamp(b.c) END,
                  CASE WHEN vodlms.coverage_complete(b.cov, b.d, b.f) THEN now() END),
         b.pl, coalesce(b.cov, B''), b.f
    FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) AS b(u, v, p, m, d, w, c, pl, cov, f)
    JOIN vodlms.videos v ON v.id = b.v JOIN vodlms.users u ON u.id = b.u
  ON CONFLICT (user_id, video_id) DO UPDATE SET
    position_seconds = EXCLUDED.position_seconds,
    max_position_seconds = greatest(wp.max_position_seconds, EXCLUDED.max_position_seconds),
    duration_seconds = EXCLUDED.duration_seconds,
    watched_seconds = wp.watched_seconds + EXCLUDED.watched_seconds,
    played_seconds = greatest(wp.played_seconds, EXCLUDED.played_seconds),
    coverage = vodlms.coverage_or(wp.coverage, EXCLUDED.coverage),
    complete_fraction = coalesce(EXCLUDED.complete_fraction, wp.complete_fraction),
    completed_at = coalesce(wp.completed_at, EXCLUDED.completed_at,
                            CASE WHEN vodlms.coverage_complete(
                                          vodlms.coverage_or(wp.coverage, EXCLUDED.coverage),
                                          EXCLUDED.duration_seconds, EXCLUDED.complete_fraction)
                                 THEN now() END);
};
# one entry of (user 1001, v68-flush, 22.5 s = 5 bits) with a bitmap
sub flush_one {
    my ($hex, $fraction) = @_;
    return "EXECUTE flush('{1001}', '{v68-flush}', '{10}', '{10}', '{22.5}', '{10}', '{0}', '{10}',"
         . " '{$hex}', '{$fraction}');";
}
my $state = q{SELECT coverage, complete_fraction, completed_at IS NOT NULL
                FROM vodlms.watch_progress WHERE video_id = 'v68-flush';};

is(sql('vodlms', "SET search_path = pg_catalog; $flush" . flush_one('xc0', '0.9') . $state),
   '11000000|0.9|f', 'the first flush stores the bitmap (hex, rounded to 8 bits) and the fraction');
is(sql('vodlms', "SET search_path = pg_catalog; $flush" . flush_one('xc0', '0.9') . flush_one('xc0', '0.9')
                 . $state),
   '11000000|0.9|f', 'the same flush replayed twice changes nothing');
is(sql('vodlms', "SET search_path = pg_catalog; $flush" . flush_one('x30', '0.9') . $state),
   '11110000|0.9|f', 'a second node\'s bits join them (4 of 5 parts: 20 of 22.5 s, under 0.9)');
is(sql('vodlms', "SET search_path = pg_catalog; $flush" . flush_one('NULL', 'NULL') . $state),
   '11110000|0.9|f', 'an entry without a bitmap changes neither');
is(sql('vodlms', "SET search_path = pg_catalog; $flush" . flush_one('x08', '0.9') . $state),
   '11111000|0.9|t', 'the last part (2.5 s) completes it: the union, not this flush\'s bits, counts');
my $done = sql('vodlms', q{SELECT completed_at FROM vodlms.watch_progress WHERE video_id = 'v68-flush'});
is(sql('vodlms', "SET search_path = pg_catalog; $flush" . flush_one('x00', '1') . $state
                 . q{ SELECT completed_at FROM vodlms.watch_progress WHERE video_id = 'v68-flush'}),
   "11111000|1|t\n$done", 'completed_at is never moved');
sql('vodlms', q{DELETE FROM vodlms.watch_progress WHERE video_id = 'v68-flush'});
is(sql('vodlms', "SET search_path = pg_catalog; $flush" . flush_one('xf8', '1') . $state),
   '11111000|1|t', 'a first flush that covers everything completes on insert');
sql('vodlms', q{DELETE FROM vodlms.videos WHERE id = 'v68-flush'});
is(sql('vodlms', q{SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                    WHERE n.nspname = 'vodlms' AND p.proname LIKE 'coverage\_%'
                      AND p.prosqlbody IS NOT NULL AND p.proconfig IS NULL}),
   '7', 'seven functions, bound when created (SQL-standard bodies): no search_path needed');

# ------------------------------------------------- the upgrade of old rows

# migrate.sh with the migrations up to 0009 only: an install from before 0010
my $old = "$tmp/old";
mkdir $old;
mkdir "$old/migrations";
copy("$repo/sql/migrate.sh", "$old/migrate.sh") or die "copy: $!";
chmod 0755, "$old/migrate.sh";
my @all = sort glob "$repo/sql/migrations/*.sql";
my @before = grep { m{/(\d{4})_[^/]*$} && $1 lt '0010' } @all;
is(scalar @before, 9, 'migrations 0001 to 0009 come before coverage');
copy($_, "$old/migrations/") or die "copy $_: $!" for @before;
mkdir "$old/seed";
copy("$repo/sql/seed/demo.sql", "$old/seed/") or die "copy demo.sql: $!";

# rows written before 0010, in schema $schema of database $db
sub upgrade_case {
    my ($db, $schema) = @_;
    my @s = $schema eq 'vodlms' ? () : ('--schema', $schema);
    $pg->psql("CREATE DATABASE $db", 'postgres');
    my ($rc, $out) = run_cmd("$old/migrate.sh", conninfo($db), @s, '--seed');
    is($rc, 0, "$db: migrations up to 0009 in schema $schema") or diag($out);
    sql($db, qq{
        SET search_path = "$schema";
        INSERT INTO videos (id, course_id, title, status, storage_prefix, duration_seconds) VALUES
            ('u1', 'c68', 'A lecture', 'ready', 'hls/u1/', 634.5),
            ('u2', 'c68', 'Not probed', 'ready', 'hls/u2/', NULL);
        INSERT INTO watch_progress (user_id, video_id, position_seconds, max_position_seconds,
                                    duration_seconds, watched_seconds, played_seconds, completed_at,
                                    started_at, updated_at) VALUES
            ('1001', 'u1', 100, 120, 634.5, 150, 100, NULL, '2025-02-01', '2025-02-02'),
            ('1002', 'u1', 600, 634.5, 634.5, 900, 700, '2025-02-03', '2025-02-01', '2025-02-03'),
            ('1003', 'u1', 0, 50, 600, 12.3, 12.3, NULL, '2025-02-01', '2025-02-04'),
            ('1004', 'u1', 634.4, 634.4, 634.5, 634.4, 634.4, NULL, '2025-02-01', '2025-02-05'),
            ('1005', 'u1', 0, 0, NULL, 0, 0, NULL, '2025-02-01', '2025-02-06'),
            ('1001', 'u2', 30, 30, 30, 30, 30, NULL, '2025-02-01', '2025-02-07'),
            ('1002', 'u2', 30, 30, NULL, 30, 30, NULL, '2025-02-01', '2025-02-08')});
    ($rc, $out) = run_cmd("$repo/sql/migrate.sh", conninfo($db), @s);
    is($rc, 0, "$db: migrate.sh applies 0010 over them") or diag($out);
    like($out, qr/^migrate\.sh: ${\ (@all - 9)} applied, 9 already applied \(schema $schema\)$/m,
         "$db: ... only 0010 and later");
    is(sql($db, qq{
        SET search_path = pg_catalog;
        SELECT string_agg(concat_ws(' ', user_id, video_id,
                                    -- ones, then zeros: print the bitmap as runs
                                    length(rtrim(coverage::text, '0')), length(coverage),
                                    bit_count(coverage), coalesce(completed_at::date::text, '-'),
                                    updated_at::date, coalesce(complete_fraction::text, '-')),
                          E'\n' ORDER BY video_id, user_id)
          FROM "$schema".watch_progress}),
       join("\n",
            '1001 u1 20 127 20 - 2025-02-02 -',              # played 100: parts to 100 s
            '1002 u1 127 127 127 2025-02-03 2025-02-03 -', # played past the end: all
            '1003 u1 2 127 2 - 2025-02-04 -',                # 12.3 s: two whole parts
            '1004 u1 126 127 126 - 2025-02-05 -',            # 634.4: not the last part
            '1005 u1 0 127 0 - 2025-02-06 -',                # nothing played
            '1001 u2 6 6 6 - 2025-02-07 -',                  # the row's 30 s when the video has none
            '1002 u2 0 0 0 - 2025-02-08 -'),                 # no duration at all: no bitmap
       "$db: each old row has the parts inside [0, least(played, max position)] of the video's "
       . 'duration, completed_at and updated_at as they were');
    ($rc, $out) = run_cmd("$repo/sql/migrate.sh", conninfo($db), @s);
    like($out, qr/^migrate\.sh: 0 applied, ${\ scalar @all} already applied \(schema $schema\)$/m,
         "$db: a second run applies nothing") or diag($out);
    is(sql($db, qq{
        SET search_path = pg_catalog;
        SELECT "$schema".coverage_complete(coverage, 634.5, 0.99),
               "$schema".coverage_first_unwatched(coverage, 634.5)
          FROM "$schema".watch_progress WHERE video_id = 'u1' AND user_id IN ('1002', '1004')
         ORDER BY user_id}),
       "t|634.500\nt|630.000", "$db: the functions read the upgraded bitmaps ($schema.coverage_*)");
}

upgrade_case('upgrade', 'vodlms');
upgrade_case('other', 'other');
is(sql('other', q{SELECT string_agg(nspname, ' ' ORDER BY nspname) FROM pg_namespace
                   WHERE nspname IN ('vodlms', 'other')}),
   'other', '--schema other: nothing in vodlms');
is(sql('other', q{SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                   WHERE n.nspname = 'other' AND p.proname LIKE 'coverage\_%'}),
   '8', '--schema other: the seven functions and the aggregate are in other');

# ------------------------------------------------- the views

# 20 s (4 parts), 12.5 s (3, the last 2.5 s), 30 s without viewers, and
# one not probed yet
sql('vodlms', q{
    INSERT INTO vodlms.videos (id, course_id, title, status, storage_prefix, duration_seconds) VALUES
        ('v68a', 'c68', 'Twenty', 'ready', 'hls/v68a/', 20),
        ('v68b', 'c68', 'Twelve and a half', 'ready', 'hls/v68b/', 12.5),
        ('v68-none', 'c68', 'Nobody', 'ready', 'hls/v68-none/', 30),
        ('v68-nodur', 'c68', 'Not probed', 'processing', NULL, NULL);
    INSERT INTO vodlms.watch_progress (user_id, video_id, coverage, complete_fraction, completed_at) VALUES
        ('1001', 'v68a', B'1111', 0.9, now()),   -- all of it
        ('1002', 'v68a', B'1100', 0.9, NULL),    -- the first half
        ('1003', 'v68a', B'1000', 0.9, NULL),    -- the first part
        ('1004', 'v68a', B'', NULL, NULL),       -- a row, no bitmap
        ('1005', 'v68a', B'0011', NULL, NULL),   -- the second half, never judged
        ('1001', 'v68b', B'111', 1, now()),
        ('1002', 'v68b', x'e', NULL, NULL),      -- the module's 4 bits, never judged
        ('1003', 'v68b', B'001', 0.1, NULL),     -- only the last 2.5 s
        ('1001', 'v68-nodur', B'1', 0.9, NULL)});

is(sql('vodlms', q{
    SELECT concat_ws(' ', video_id, viewers, completions, coalesce(completion_rate::text, '-'),
                     coalesce(avg_coverage::text, '-'), coalesce(median_coverage::text, '-'),
                     coalesce(coverage_completion_rate::text, '-'))
      FROM vodlms.video_stats WHERE video_id LIKE 'v68%' ORDER BY video_id}),
   join("\n",
        'v68-nodur 1 0 0.0000 - - -',                # no duration: no coverage numbers
        'v68-none 0 0 - - - -',                      # no viewers: nothing to divide
        'v68a 5 1 0.2000 0.4500 0.5000 0.2000',      # (1 + .5 + .25 + 0 + .5) / 5; median .5
        'v68b 3 1 0.3333 0.7333 1.0000 0.6667'),     # (1 + 1 + .2) / 3; 1001 and 1003 complete
   'video_stats: avg_coverage, median_coverage, coverage_completion_rate from the bitmaps');

is(sql('vodlms', q{
    SELECT concat_ws(' ', video_id, part, start_seconds, end_seconds, video_viewers, viewers,
                     coalesce(share::text, '-'), stopped_here)
      FROM vodlms.video_audience WHERE video_id LIKE 'v68%' ORDER BY video_id, part}),
   join("\n",
        'v68-none 0 0 5.000 0 0 - 0',
        'v68-none 1 5 10.000 0 0 - 0',
        'v68-none 2 10 15.000 0 0 - 0',
        'v68-none 3 15 20.000 0 0 - 0',
        'v68-none 4 20 25.000 0 0 - 0',
        'v68-none 5 25 30.000 0 0 - 0',
        'v68a 0 0 5.000 5 3 0.6000 1',       # 1001, 1002, 1003; 1003 stops here
        'v68a 1 5 10.000 5 2 0.4000 1',      # 1002 stops here
        'v68a 2 10 15.000 5 2 0.4000 0',
        'v68a 3 15 20.000 5 2 0.4000 2',     # 1001 and 1005 to the end
        'v68b 0 0 5.000 3 2 0.6667 0',
        'v68b 1 5 10.000 3 2 0.6667 0',
        'v68b 2 10 12.500 3 3 1.0000 3'),    # 1002's 4th (padding) bit is past the video
   'video_audience: per 5-second part, who played it and who stopped there; '
   . 'parts for a video without viewers, none for one without a duration');

is(sql('vodlms', q{SELECT vodlms.coverage_union(coverage) FROM vodlms.watch_progress
                    WHERE video_id = 'v68a'}),
   '1111', 'coverage_union over a video\'s rows: every part someone played');

done_testing();
