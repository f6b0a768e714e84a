#!/usr/bin/perl

# The C unit tests of the pure core, under prove
# (t/unit/UnitRun.pm: <build>/unit/test_core; a missing binary fails).

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;
use UnitRun;

UnitRun::run('test_core');
