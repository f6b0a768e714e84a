#!/usr/bin/perl

# The C unit tests of the coverage bitmap (core/vodlms_coverage.c), under prove
# (t/unit/UnitRun.pm: <build>/unit/test_coverage; a missing binary fails).

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;
use UnitRun;

UnitRun::run('test_coverage');
