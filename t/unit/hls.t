#!/usr/bin/perl

# The C unit tests of the signed-playlist rewriter (core/vodlms_hls.c), under prove
# (t/unit/UnitRun.pm: <build>/unit/test_hls; a missing binary fails).

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;
use UnitRun;

UnitRun::run('test_hls');
